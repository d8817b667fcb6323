mod ephemeral;
mod fuzz;
mod kube_core;
