pub mod fuzz;
pub mod mutate;
