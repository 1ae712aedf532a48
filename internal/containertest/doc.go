// Package containertest tests fshealth's container image and Kubernetes
// manifest (dist/kubernetes/fshealth.yaml): the image as `make image` builds
// it, the manifest against the Kubernetes API's own types (tools/kubecheck),
// and the DaemonSet's pod run the way a kubelet runs it — its volumes,
// mount propagation, read-only root, network namespace and probes — on a
// real ext4 error. It has tests only; run them as root.
package containertest
