// control plane module.
