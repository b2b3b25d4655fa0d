// Command controlplane is the test control plane of podvisor's end-to-end suite: the real kube-apiserver,
// kube-controller-manager, kubectl and etcd from their published Go modules, linked into one binary so the
// (slow) link is paid once. The first argument picks the program; the rest are that program's own flags.
package main

import (
	"fmt"
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	kubectl "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

const usage = "usage: controlplane kube-apiserver|kube-controller-manager|kubectl|etcd [flags...]"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	program, args := os.Args[1], os.Args[2:]
	// Each program parses os.Args itself (cobra, etcd's flag set): show it only its own flags.
	os.Args = append([]string{program}, args...)
	switch program {
	case "kube-apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	case "kubectl":
		// As kubectl's own main: errors are printed by CheckErr in kubectl's format and exit code.
		if err := cli.RunNoErrOutput(kubectl.NewDefaultKubectlCommand()); err != nil {
			kubectlutil.CheckErr(err)
		}
	case "etcd":
		etcdmain.Main(os.Args)
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
}
