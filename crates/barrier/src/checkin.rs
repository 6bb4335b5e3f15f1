//! Sending to a barrier's check-in queue: check-ins, aborts, joins, probes.

use crate::error::Result;
use crate::info::BarrierInfo;
use crate::sqs::Sqs;

/// Sends `body` to the check-in queue of `info`. On a FIFO barrier the
/// message goes in message group `group` with a fresh deduplication id.
pub(crate) async fn send_checkin(
    sqs: &Sqs,
    info: &BarrierInfo,
    body: &str,
    group: &str,
) -> Result<()> {
    let mut req = sqs
        .client()
        .send_message()
        .queue_url(&info.urls.checkin)
        .message_body(body);
    if info.config.fifo {
        // The group keeps one participant's messages of one generation in
        // order; the dedup id makes the SDK's retries of this send one message
        // (the body alone would repeat across generations and sessions).
        let dedup = format!("{:016x}", rand::random::<u64>());
        req = req.message_group_id(group).message_deduplication_id(dedup);
    }
    req.send().await.map_err(|e| sqs.error("SendMessage", e))?;
    Ok(())
}
