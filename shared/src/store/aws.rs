//! AWS clients, built once per container. `AWS_ENDPOINT_URL` (read by the SDK
//! itself) points every client at moto locally; S3 then needs path-style
//! addressing, since moto has no per-bucket host names.

pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_from_env().await
}

pub fn sqs_client(config: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(config)
}

pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let path_style = config.endpoint_url().is_some();
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(path_style)
        .build();
    aws_sdk_s3::Client::from_conf(s3_config)
}
