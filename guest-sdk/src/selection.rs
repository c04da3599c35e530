//! Reading many values in one host call: [`Field`] names a value, [`Selection`] holds what
//! one [`Container::select`](crate::Container::select) call read.
//!
//! Owns the typed view of the WIT `selection`: every value arrives in one string with a
//! byte range per field, so reading ten values costs one call into the host and two
//! allocations, not ten of each.

use crate::wit::gannet::plugin::types as wit;

/// The packed span of a field the record has no value for.
const ABSENT: u64 = u64::MAX;

/// One value [`Container::select`](crate::Container::select) can read: a field of the
/// record (`Field::Namespace`) or one key of one of its maps
/// (`Field::PodLabel("app".into())`). Every value comes back as text: numbers in decimal,
/// `IsSandbox` as `true`/`false`, `State` as its name (`running`).
///
/// Build the list once (in your `init` function) and pass it on every call: the host
/// reads the keys straight from it, with no copy in the plugin.
pub use crate::wit::gannet::plugin::types::Field;

/// The values one [`Container::select`](crate::Container::select) call read, in the order
/// of the fields asked for.
///
/// ```
/// # use gannet_guest::testing::MockContainer;
/// use gannet_guest::Field;
/// let record = gannet_guest::Container::from(
///     MockContainer::new().namespace("shop").pod_label("app", "web"),
/// );
/// let fields = [Field::Namespace, Field::PodLabel("app".into()), Field::PodLabel("tier".into())];
/// let values = record.select(&fields);
/// assert_eq!(values.get(0), Some("shop"));
/// assert_eq!(values.get(1), Some("web"));
/// assert_eq!(values.get(2), None); // no such label
/// assert_eq!(values.iter().collect::<Vec<_>>(), [Some("shop"), Some("web"), None]);
/// ```
#[derive(Debug, Clone)]
pub struct Selection(wit::Selection);

impl Selection {
    pub(crate) fn from_wit(selection: wit::Selection) -> Self {
        Self(selection)
    }

    /// The value of the `index`th field asked for; `None` when the record has no such
    /// value (or there was no `index`th field).
    pub fn get(&self, index: usize) -> Option<&str> {
        let span = *self.0.spans.get(index)?;
        if span == ABSENT {
            return None;
        }
        let start = usize::try_from(span >> 32).ok()?;
        let end = start.checked_add(usize::try_from(span & 0xffff_ffff).ok()?)?;
        self.0.text.get(start..end)
    }

    /// How many fields were asked for.
    pub fn len(&self) -> usize {
        self.0.spans.len()
    }

    /// True when no field was asked for.
    pub fn is_empty(&self) -> bool {
        self.0.spans.is_empty()
    }

    /// Every value, in the order of the fields asked for.
    pub fn iter(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_that_do_not_fit_the_text_read_as_missing() {
        let selection = Selection::from_wit(wit::Selection {
            text: "abc".into(),
            spans: vec![1 << 32 | 2, 2 << 32 | 5, u64::MAX - 1, ABSENT],
        });
        assert_eq!(selection.len(), 4);
        assert_eq!(selection.get(0), Some("bc"));
        assert_eq!(selection.get(1), None);
        assert_eq!(selection.get(2), None);
        assert_eq!(selection.get(3), None);
        assert_eq!(selection.get(4), None);
    }

    #[test]
    fn packing_keeps_order_and_empty_values() -> Result<(), gannet_record::AnswerTooLarge> {
        // Packed by the host's own code.
        let mut record = gannet_record::ContainerRecord::default();
        record.tags.insert("a".into(), "a".into());
        record.tags.insert("e".into(), String::new());
        record.tags.insert("bc".into(), "bc".into());
        let fields = ["a", "none", "e", "bc"].map(|k| gannet_record::Field::Tag(k.into()));
        let gannet_record::Selection { text, spans } =
            gannet_record::select(&record, &fields, usize::MAX)?;
        let selection = Selection::from_wit(wit::Selection { text, spans });
        assert_eq!(
            selection.iter().collect::<Vec<_>>(),
            [Some("a"), None, Some(""), Some("bc")]
        );
        assert!(!selection.is_empty());
        Ok(())
    }
}
