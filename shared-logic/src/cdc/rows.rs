//! The rows of the two tables as a change event carries them (before and after images),
//! and how each column is read from Debezium's JSON (numbers or text, epoch ms or RFC 3339).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::reject::{reject, CdcReason, CdcRejection};
use crate::money::{format_minor, parse_decimal_minor, Currency, MAX_AMOUNT_MINOR};

/// An order's status; cancelled and refunded orders no longer count as revenue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Created,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
    Refunded,
}

impl OrderStatus {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "created" | "pending" | "placed" => OrderStatus::Created,
            "paid" => OrderStatus::Paid,
            "shipped" => OrderStatus::Shipped,
            "delivered" | "completed" => OrderStatus::Delivered,
            "cancelled" | "canceled" => OrderStatus::Cancelled,
            "refunded" => OrderStatus::Refunded,
            _ => return None,
        })
    }

    /// Whether an order in this status counts as revenue.
    pub fn is_live(self) -> bool {
        !matches!(self, OrderStatus::Cancelled | OrderStatus::Refunded)
    }
}

/// One row of `orders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRow {
    pub order_id: String,
    pub user_id: String,
    pub product_id: String,
    pub quantity: i64,
    /// Unit price in minor units of `currency`.
    pub price_minor: i64,
    pub currency: Currency,
    pub country: String,
    pub status: OrderStatus,
    /// When the order was placed (epoch ms): its event time.
    pub created_at: i64,
}

/// One row of `products`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRow {
    pub product_id: String,
    pub category: String,
}

/// One row of `users`: what the `users` dimension keeps of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    pub user_id: String,
    /// ISO 3166 alpha-2, upper case; `None` when the column is absent or null.
    pub country: Option<String>,
    /// `None` when the column is absent or null.
    pub birth_year: Option<i32>,
}

/// A row image of any of the tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Row {
    Order(OrderRow),
    Product(ProductRow),
    User(UserRow),
}

impl Row {
    pub(super) fn key(&self) -> &str {
        match self {
            Row::Order(o) => &o.order_id,
            Row::Product(p) => &p.product_id,
            Row::User(u) => &u.user_id,
        }
    }
}

/// Birth years accepted in a users row.
const BIRTH_YEARS: std::ops::RangeInclusive<i64> = 1900..=2100;

pub(super) fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(super) fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A timestamp column: epoch milliseconds, or RFC 3339 text.
pub(super) fn timestamp(v: &Value) -> Option<i64> {
    integer(v).or_else(|| {
        v.as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s.trim()).ok())
            .map(|t| t.timestamp_millis())
    })
}

pub(super) fn column<'a>(
    row: &'a Map<String, Value>,
    image: &str,
    name: &str,
) -> Result<&'a Value, CdcRejection> {
    row.get(name).filter(|v| !v.is_null()).ok_or_else(|| {
        reject(
            CdcReason::MissingField,
            format!("{image}.{name} is missing"),
        )
    })
}

pub(super) fn invalid(image: &str, name: &str, v: &Value) -> CdcRejection {
    reject(
        CdcReason::InvalidValue,
        format!("{image}.{name} has an invalid value {v}"),
    )
}

pub(super) fn order_row(row: &Map<String, Value>, image: &str) -> Result<OrderRow, CdcRejection> {
    let get = |name: &str| column(row, image, name);
    let string =
        |name: &str| get(name).and_then(|v| text(v).ok_or_else(|| invalid(image, name, v)));
    let currency_text = string("currency")?;
    let currency = Currency::parse(&currency_text)
        .ok_or_else(|| invalid(image, "currency", &Value::String(currency_text.clone())))?;
    let price = get("price")?;
    let price_text = match price {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        other => return Err(invalid(image, "price", other)),
    };
    let price_minor = parse_decimal_minor(&price_text, currency.exponent())
        .ok()
        .filter(|p| *p >= 0)
        .ok_or_else(|| invalid(image, "price", price))?;
    let quantity = get("quantity")?;
    let quantity = integer(quantity)
        .filter(|q| (1..=1_000_000).contains(q))
        .ok_or_else(|| invalid(image, "quantity", quantity))?;
    if price_minor as i128 * quantity as i128 > MAX_AMOUNT_MINOR as i128 {
        return Err(reject(
            CdcReason::AmountOutOfRange,
            format!(
                "{image}: price {price_text} × quantity {quantity} is more than {} {currency}",
                format_minor(MAX_AMOUNT_MINOR, currency)
            ),
        ));
    }
    let status = get("status")?;
    let status = status
        .as_str()
        .and_then(OrderStatus::parse)
        .ok_or_else(|| invalid(image, "status", status))?;
    let created = get("created_at")?;
    let created_at = timestamp(created).ok_or_else(|| invalid(image, "created_at", created))?;
    let country = country_code(string("country")?, image)?;
    Ok(OrderRow {
        order_id: string("id")?,
        user_id: string("user_id")?,
        product_id: string("product_id")?,
        quantity,
        price_minor,
        currency,
        country,
        status,
        created_at,
    })
}

pub(super) fn product_row(
    row: &Map<String, Value>,
    image: &str,
) -> Result<ProductRow, CdcRejection> {
    let string = |name: &str| {
        column(row, image, name).and_then(|v| text(v).ok_or_else(|| invalid(image, name, v)))
    };
    Ok(ProductRow {
        product_id: string("id")?,
        category: string("category")?.to_ascii_lowercase(),
    })
}

/// An ISO 3166 alpha-2 country code, upper cased.
fn country_code(text: String, image: &str) -> Result<String, CdcRejection> {
    let country = text.to_ascii_uppercase();
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(invalid(image, "country", &Value::String(country)));
    }
    Ok(country)
}

pub(super) fn user_row(row: &Map<String, Value>, image: &str) -> Result<UserRow, CdcRejection> {
    let user_id =
        column(row, image, "id").and_then(|v| text(v).ok_or_else(|| invalid(image, "id", v)))?;
    let country = match row.get("country") {
        None | Some(Value::Null) => None,
        Some(v) => Some(country_code(
            text(v).ok_or_else(|| invalid(image, "country", v))?,
            image,
        )?),
    };
    let birth_year = match row.get("birth_year") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            integer(v)
                .filter(|y| BIRTH_YEARS.contains(y))
                .ok_or_else(|| invalid(image, "birth_year", v))? as i32,
        ),
    };
    Ok(UserRow {
        user_id,
        country,
        birth_year,
    })
}
