//! Every metric's definition, once: its dimensions, its state, how an event (or a session,
//! or an order delta) updates it, and how a merged state evaluates to values. Both layers
//! run exactly these; the list of metrics is [`crate::registry`].

mod daily_sales;
mod funnel;
mod orders;
mod page_views;
mod quality;
mod revenue;
mod sessions;
#[cfg(test)]
mod tests;

pub use daily_sales::{DailySales, DailySalesState};
pub use funnel::{Funnel, FunnelState};
pub use orders::{Orders, OrdersState};
pub use page_views::{PageViews, PageViewsState};
pub use quality::Quality;
pub use revenue::{Revenue, RevenueState};
pub use sessions::{Sessions, SessionsState};
