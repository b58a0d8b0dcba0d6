//! What a consumed record says of itself besides its payload and timestamp: the header
//! naming its source ([`shared_logic::source::SOURCE_HEADER`]), read alike by the speed
//! layer and the lake writer.

use rdkafka::message::{Headers, Message};

/// The value of the record's source header, when it has one (the last, when repeated).
pub fn source_header<M: Message>(message: &M) -> Option<Vec<u8>> {
    let headers = message.headers()?;
    headers
        .iter()
        .filter(|h| h.key == shared_logic::source::SOURCE_HEADER)
        .filter_map(|h| h.value)
        .last()
        .map(<[u8]>::to_vec)
}
