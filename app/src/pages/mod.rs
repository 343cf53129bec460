//! One file per page.

pub mod cart;
pub mod checkout;
pub mod home;
pub mod me;
pub mod not_found;
pub mod order;
pub mod orders;
pub mod product;
