// libcni-driver runs CNI plugins the way container runtimes do, through
// the reference runtime library (libcni from containernetworking/cni,
// Debian's golang-github-appc-cni-dev). The vswitch-cni tests use it to
// check that the plugin works under a real runtime's CNI code: conflist
// loading, capability args, the result cache, prevResult on CHECK and DEL.
//
//	libcni-driver -conflist F -path DIR [-cache DIR] -netns P -container ID
//	    -ifname IF [-args K=V;K=V] [-mac M] [-ips a,b] add|check|del|validate
//
// add prints the result (in the conflist's version) as JSON on stdout;
// every failure prints libcni's error on stderr and exits 1.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

func main() {
	conflist := flag.String("conflist", "", "network configuration list file")
	path := flag.String("path", "", "plugin directories, ':'-separated")
	cache := flag.String("cache", "", "libcni's result cache directory")
	netns := flag.String("netns", "", "network namespace path")
	container := flag.String("container", "", "container id")
	ifname := flag.String("ifname", "eth0", "interface name in the container")
	args := flag.String("args", "", "CNI_ARGS as K=V;K=V")
	mac := flag.String("mac", "", "the `mac` capability")
	ips := flag.String("ips", "", "the `ips` capability, ','-separated")
	flag.Parse()
	if flag.NArg() != 1 {
		fail(fmt.Errorf("one command expected: add, check, del or validate"))
	}

	list, err := libcni.ConfListFromFile(*conflist)
	if err != nil {
		fail(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir(strings.Split(*path, ":"), *cache, nil)
	rt := &libcni.RuntimeConf{
		ContainerID:    *container,
		NetNS:          *netns,
		IfName:         *ifname,
		CapabilityArgs: map[string]interface{}{},
	}
	if *args != "" {
		for _, kv := range strings.Split(*args, ";") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				fail(fmt.Errorf("-args: %q is not K=V", kv))
			}
			rt.Args = append(rt.Args, [2]string{k, v})
		}
	}
	if *mac != "" {
		rt.CapabilityArgs["mac"] = *mac
	}
	if *ips != "" {
		rt.CapabilityArgs["ips"] = strings.Split(*ips, ",")
	}

	ctx := context.Background()
	switch flag.Arg(0) {
	case "add":
		res, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail(err)
		}
		out, err := json.Marshal(res)
		if err != nil {
			fail(err)
		}
		fmt.Println(string(out))
	case "check":
		err = cni.CheckNetworkList(ctx, list, rt)
	case "del":
		err = cni.DelNetworkList(ctx, list, rt)
	case "validate":
		var caps []string
		caps, err = cni.ValidateNetworkList(ctx, list)
		if err == nil {
			fmt.Println(strings.Join(caps, ","))
		}
	default:
		err = fmt.Errorf("unknown command %q", flag.Arg(0))
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "libcni:", err)
	os.Exit(1)
}
