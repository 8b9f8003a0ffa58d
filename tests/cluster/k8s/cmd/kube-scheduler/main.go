// Command kube-scheduler runs the upstream scheduler unchanged. kwok fakes kubelets but
// does not bind pods to nodes, so without a scheduler no Deployment would become Ready.
package main

import (
	"os"

	_ "k8s.io/component-base/logs/json/register" // same log formats as the upstream binary
	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	os.Exit(cli.Run(app.NewSchedulerCommand()))
}
