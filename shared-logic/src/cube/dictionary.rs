//! The dictionary of one dimension's values in a [`super::Cube`]: each distinct value once,
//! sorted, so that a value's code is its rank and codes compare as the values do.

use hashbrown::HashMap;

/// Distinct values of one dimension, sorted; a value's code is its index.
#[derive(Debug, Default, Clone)]
pub(crate) struct Dictionary {
    values: Vec<Box<str>>,
}

impl Dictionary {
    /// The value of `code`.
    pub(crate) fn value(&self, code: u32) -> &str {
        &self.values[code as usize]
    }

    /// The values, in code order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(|v| v.as_ref())
    }

    /// The code of `value`, when the dictionary holds it.
    pub(crate) fn code(&self, value: &str) -> Option<u32> {
        self.values
            .binary_search_by(|v| v.as_ref().cmp(value))
            .ok()
            .map(|i| i as u32)
    }

    /// Heap bytes held (the values and the vector).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<Box<str>>()
            + self.values.iter().map(|v| v.len()).sum::<usize>()
    }
}

/// Builds a [`Dictionary`] while codes are handed out in first-seen order; [`Self::finish`]
/// sorts the values and says where each provisional code went.
#[derive(Default)]
pub(crate) struct DictionaryBuilder<'a> {
    codes: HashMap<&'a str, u32>,
    values: Vec<&'a str>,
}

impl<'a> DictionaryBuilder<'a> {
    /// The provisional code of `value`.
    pub(crate) fn intern(&mut self, value: &'a str) -> u32 {
        if let Some(code) = self.codes.get(value) {
            return *code;
        }
        let code = self.values.len() as u32;
        self.codes.insert(value, code);
        self.values.push(value);
        code
    }

    /// The sorted dictionary, and for each provisional code its final one.
    pub(crate) fn finish(self) -> (Dictionary, Vec<u32>) {
        let mut order: Vec<u32> = (0..self.values.len() as u32).collect();
        order.sort_unstable_by(|a, b| self.values[*a as usize].cmp(self.values[*b as usize]));
        let mut remap = vec![0u32; order.len()];
        for (rank, provisional) in order.iter().enumerate() {
            remap[*provisional as usize] = rank as u32;
        }
        let values = order
            .iter()
            .map(|p| Box::from(self.values[*p as usize]))
            .collect();
        (Dictionary { values }, remap)
    }
}

/// [`DictionaryBuilder::finish`] for each dimension's builder: the dictionaries, and per
/// dimension where each provisional code went.
pub(crate) fn finish_all(builders: Vec<DictionaryBuilder<'_>>) -> (Vec<Dictionary>, Vec<Vec<u32>>) {
    builders.into_iter().map(DictionaryBuilder::finish).unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_values_order() {
        let mut b = DictionaryBuilder::default();
        let first: Vec<u32> = ["mobile", "desktop", "mobile", "tablet"]
            .iter()
            .map(|v| b.intern(v))
            .collect();
        assert_eq!(first, vec![0, 1, 0, 2]);
        let (dict, remap) = b.finish();
        assert_eq!(remap, vec![1, 0, 2], "desktop < mobile < tablet");
        assert_eq!(dict.value(0), "desktop");
        assert_eq!(dict.code("mobile"), Some(1));
        assert_eq!(dict.code("tv"), None);
    }
}
