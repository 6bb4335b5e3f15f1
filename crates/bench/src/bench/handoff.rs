//! The endpoint's own hand-off time: the floor of any SQS barrier.

use std::time::{Duration, Instant};

use super::{Failure, Target, sdk};
use crate::Failed;

pub(super) async fn handoff(
    target: &Target,
    name: &str,
    samples: usize,
) -> Result<Vec<f64>, Failure> {
    let sender = target.sqs().await?;
    let receiver = target.sqs().await?;
    let url = sender
        .client()
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| Failure::infra(sdk("CreateQueue", e)))?
        .queue_url
        .unwrap_or_default();
    let mut out = Vec::with_capacity(samples);
    let mut empty = 0;
    let result = async {
        for i in 0..samples {
            let (c, u) = (receiver.client().clone(), url.clone());
            let recv = tokio::spawn(async move {
                let r = c
                    .receive_message()
                    .queue_url(u)
                    .max_number_of_messages(1)
                    .visibility_timeout(43_200)
                    .wait_time_seconds(20)
                    .send()
                    .await;
                (Instant::now(), r)
            });
            // Let the long poll reach the endpoint and park.
            tokio::time::sleep(Duration::from_millis(5)).await;
            let t0 = Instant::now();
            sender
                .client()
                .send_message()
                .queue_url(&url)
                .message_body(format!("hand-off {i}"))
                .send()
                .await
                .map_err(|e| Failure::infra(sdk("SendMessage", e)))?;
            let (t1, r) = recv
                .await
                .map_err(|e| Failure::new(Failed::Internal, e.to_string()))?;
            let r = r.map_err(|e| Failure::infra(sdk("ReceiveMessage", e)))?;
            if r.messages.is_some_and(|m| !m.is_empty()) {
                out.push(t1.saturating_duration_since(t0).as_secs_f64() * 1e3);
                continue;
            }
            // An empty answer although a message was sent (SQS may do
            // this, rarely): the sample is void. Take the message so the
            // next sample starts from an empty queue; give up if it never
            // comes.
            empty += 1;
            let again = receiver
                .client()
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .visibility_timeout(43_200)
                .wait_time_seconds(5)
                .send()
                .await
                .map_err(|e| Failure::infra(sdk("ReceiveMessage", e)))?;
            if empty > 3 || again.messages.is_none_or(|m| m.is_empty()) {
                return Err(Failure::infra(format!(
                    "hand-off sample {i}: the endpoint does not deliver a message that was sent \
                     ({empty} empty long polls)"
                )));
            }
        }
        Ok::<(), Failure>(())
    }
    .await;
    let _ = sender.client().delete_queue().queue_url(&url).send().await;
    result?;
    if out.is_empty() {
        return Err(Failure::infra("the hand-off measurement received nothing"));
    }
    Ok(out)
}
