// A runtime's side of CNI, through containernetworking/cni's libcni (the
// library containerd and CRI-O use): loads a conflist and runs ADD, CHECK,
// DEL or VALIDATE against the plugins in a directory, with the ips and mac
// capabilities and Kubernetes CNI_ARGS. Built by tests/libcni.rs in GOPATH
// mode against Debian's golang-github-appc-cni-dev (libcni 1.1.2).
//
// usage: driver <add|check|del|validate> <conflist> <plugin dirs (a:b)> <cache dir>
//
//	<netns> <container id> <ifname> [ip] [mac]
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
)

func main() {
	a := os.Args[1:]
	if len(a) < 7 {
		fmt.Fprintln(os.Stderr, "usage: driver <add|check|del|validate> <conflist> <plugin dir> <cache dir> <netns> <container id> <ifname> [ip] [mac]")
		os.Exit(2)
	}
	list, err := libcni.ConfListFromFile(a[1])
	if err != nil {
		fail(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(a[2]), a[3], nil)
	rt := &libcni.RuntimeConf{
		ContainerID: a[5],
		NetNS:       a[4],
		IfName:      a[6],
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", "default"},
			{"K8S_POD_NAME", "libcni-pod"},
			{"K8S_POD_INFRA_CONTAINER_ID", a[5]},
		},
		CapabilityArgs: map[string]interface{}{},
	}
	if len(a) > 7 && a[7] != "" {
		rt.CapabilityArgs["ips"] = []string{a[7]}
	}
	if len(a) > 8 && a[8] != "" {
		rt.CapabilityArgs["mac"] = a[8]
	}
	ctx := context.Background()
	switch a[0] {
	case "add":
		res, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail(err)
		}
		if err := res.Print(); err != nil {
			fail(err)
		}
	case "check":
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
	case "del":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
	case "validate":
		caps, err := cni.ValidateNetworkList(ctx, list)
		if err != nil {
			fail(err)
		}
		out, _ := json.Marshal(caps)
		fmt.Println(string(out))
	default:
		fail(fmt.Errorf("unknown action %q", a[0]))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
