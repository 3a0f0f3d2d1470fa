//! The table the native parts write: the same shape as the engine tests' `items` (integer key
//! assigned by SQLite, text, integer, real, nullable text, blob, one index).

use nanotype::Row;

#[nanotype::table(name = "items", index(kind, n))]
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    #[nanotype(primary_key)]
    pub id: i64,
    pub room_tag: String,
    pub kind: String,
    pub n: i64,
    pub score: f64,
    pub note: Option<String>,
    pub data: Vec<u8>,
}

/// The `i`-th row: deterministic, about 80 bytes of values, like a small task.
pub fn item(i: u64) -> Item {
    Item {
        id: 0,
        room_tag: "room-bench".into(),
        kind: ["open", "doing", "done"][(i % 3) as usize].into(),
        n: (i.wrapping_mul(2_654_435_761) % 1_000_000) as i64,
        score: i as f64 / 7.0,
        note: (!i.is_multiple_of(4)).then(|| format!("note number {i} for the benchmark")),
        data: (0..16).map(|b| (i as u8).wrapping_add(b)).collect(),
    }
}

/// The row of `item(i)` with key `id`, in model column order.
pub fn row(id: i64, i: u64) -> Row {
    let mut r = nanotype::Table::to_row(&item(i)).expect("bench rows convert");
    r[0] = nanotype::Value::Integer(id);
    r
}
