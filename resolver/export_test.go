package resolver

// SetOffline replaces, until restore is called, the probe that says whether the process has no
// network but loopback.
func SetOffline(f func() bool) (restore func()) {
	saved := offline
	offline = f
	return func() { offline = saved }
}
