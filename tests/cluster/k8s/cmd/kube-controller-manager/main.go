// Command kube-controller-manager runs the upstream controller manager unchanged; this
// wrapper only exists so that a pinned k8s.io/kubernetes release can be built here.
package main

import (
	"os"

	_ "k8s.io/component-base/logs/json/register" // same log formats as the upstream binary
	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
