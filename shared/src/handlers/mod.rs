pub mod api;
pub mod lambda;
pub mod sqs_loader;
