mod fuzz;
mod kube_core;
