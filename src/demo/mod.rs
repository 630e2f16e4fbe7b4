pub async fn run_cli(_out: std::path::PathBuf, _chats: usize) -> anyhow::Result<i32> {
    anyhow::bail!("demo not yet built")
}
