package digestcache

// Len is the number of entries the cache holds, lookups in flight included.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
