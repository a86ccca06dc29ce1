// Command etcd is etcd's server (go.etcd.io/etcd/server/v3/etcdmain) at the version k8s.io/kubernetes
// v1.36.3 pins, built for the webhook's end-to-end tests.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
