//! `approx_distinct_merge(sketch)`: the distinct count over the rows it aggregates, from
//! their sketch columns (`users_sketch`, ...). Summing per-row distinct counts counts a user
//! once per row they appear in; merging the sketches counts them once, as the REST API's
//! own grouping does (the same merge and estimate, from shared-logic).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use shared_logic::hll::Hll;
use shared_logic::Mergeable;

use crate::error::StateError;

/// The aggregate function, for registration.
pub fn approx_distinct_merge() -> AggregateUDF {
    AggregateUDF::from(ApproxDistinctMerge {
        signature: Signature::uniform(
            1,
            vec![
                DataType::Binary,
                DataType::LargeBinary,
                DataType::BinaryView,
            ],
            Volatility::Immutable,
        ),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ApproxDistinctMerge {
    signature: Signature,
}

impl AggregateUDFImpl for ApproxDistinctMerge {
    fn name(&self) -> &str {
        "approx_distinct_merge"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SketchUnion::default()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "sketch"),
            DataType::Binary,
            true,
        ))])
    }
}

/// The union of the sketches seen so far.
#[derive(Debug, Default)]
struct SketchUnion {
    union: Hll,
}

impl SketchUnion {
    fn add_all(&mut self, array: &ArrayRef) -> Result<()> {
        let mut add = |bytes: &[u8]| -> Result<()> {
            let sketch = Hll::from_bytes(bytes).map_err(|e| {
                StateError::new("22P03", format!("approx_distinct_merge: not a sketch: {e}"))
                    .into_datafusion()
            })?;
            self.union.merge(&sketch);
            Ok(())
        };
        match array.data_type() {
            DataType::Binary => array
                .as_binary::<i32>()
                .iter()
                .flatten()
                .try_for_each(&mut add),
            DataType::LargeBinary => array
                .as_binary::<i64>()
                .iter()
                .flatten()
                .try_for_each(&mut add),
            DataType::BinaryView => array
                .as_binary_view()
                .iter()
                .flatten()
                .try_for_each(&mut add),
            other => Err(DataFusionError::Execution(format!(
                "approx_distinct_merge takes sketch bytes, not {other}"
            ))),
        }
    }
}

impl Accumulator for SketchUnion {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        values.iter().try_for_each(|a| self.add_all(a))
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        states.iter().try_for_each(|a| self.add_all(a))
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Binary(Some(self.union.to_bytes()))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(
            self.union.estimate().min(i64::MAX as u64) as i64,
        )))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.union.to_bytes().len()
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::BinaryArray;
    use proptest::prelude::*;

    use super::*;

    fn sketch(hashes: &[u64]) -> Hll {
        let mut h = Hll::default();
        hashes.iter().for_each(|x| h.add_hash(*x));
        h
    }

    proptest! {
        /// Merging rows' sketches in any split (update, then partial states merged)
        /// estimates what one sketch of every hash estimates.
        #[test]
        fn merged_sketches_estimate_the_union(
            rows in prop::collection::vec(prop::collection::vec(any::<u64>(), 0..40), 1..12),
            split in 0usize..12,
        ) {
            let split = split.min(rows.len());
            let bytes = |rs: &[Vec<u64>]| -> ArrayRef {
                Arc::new(BinaryArray::from_iter_values(rs.iter().map(|r| sketch(r).to_bytes())))
            };
            let (mut a, mut b) = (SketchUnion::default(), SketchUnion::default());
            a.update_batch(&[bytes(&rows[..split])]).unwrap();
            b.update_batch(&[bytes(&rows[split..])]).unwrap();
            let state = b.state().unwrap();
            let ScalarValue::Binary(Some(state)) = &state[0] else { panic!("binary state") };
            a.merge_batch(&[Arc::new(BinaryArray::from_iter_values([state]))]).unwrap();
            let all: Vec<u64> = rows.concat();
            prop_assert_eq!(a.evaluate().unwrap(), ScalarValue::Int64(Some(sketch(&all).estimate() as i64)));
        }
    }

    #[test]
    fn bytes_that_are_not_a_sketch_are_an_error_with_a_sqlstate() {
        let mut acc = SketchUnion::default();
        let junk: ArrayRef = Arc::new(BinaryArray::from_iter_values([b"junk".as_slice()]));
        let err = acc.update_batch(&[junk]).unwrap_err();
        let DataFusionError::External(e) = err else {
            panic!("{err}")
        };
        assert_eq!(
            e.downcast_ref::<StateError>().map(|s| s.code),
            Some("22P03")
        );
    }
}
