use super::*;

#[tokio::test]
async fn invocations_wait_for_the_first_key_release() {
    let (tx, rx) = tokio::sync::watch::channel(KeyRelease::Pending);
    let engines = InProcessEngines::new(Vec::new()).holding_until(rx);
    let waiting = tokio::spawn({
        let engines = engines.clone();
        async move { engines.keys_released().await }
    });
    tokio::task::yield_now().await;
    tx.send(KeyRelease::Done).expect("receiver alive");
    assert!(waiting.await.expect("task"));
    // Later calls see the outcome at once.
    assert!(engines.keys_released().await);
}

#[tokio::test]
async fn a_failed_or_abandoned_key_release_is_refused() {
    let (tx, rx) = tokio::sync::watch::channel(KeyRelease::Pending);
    let engines = InProcessEngines::new(Vec::new()).holding_until(rx);
    tx.send(KeyRelease::Failed).expect("receiver alive");
    assert!(!engines.keys_released().await);

    let (tx, rx) = tokio::sync::watch::channel(KeyRelease::Pending);
    let engines = InProcessEngines::new(Vec::new()).holding_until(rx);
    drop(tx);
    assert!(!engines.keys_released().await);
}

#[tokio::test]
async fn without_a_gate_the_engine_answers_for_itself() {
    assert!(InProcessEngines::new(Vec::new()).keys_released().await);
}
