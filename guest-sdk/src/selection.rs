//! Reading many values in one host call: [`Field`] names a value, [`FieldSet`] is the list
//! a plugin builds once (each field answering by its [`Slot`]), [`Selection`] holds what
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

/// The fields one [`Container::select`](crate::Container::select) reads, built once (in
/// your `init` function): [`add`](Self::add) hands back the [`Slot`] where that field's
/// value will be in every [`Selection`], so there are no positions to keep track of, and
/// a field added twice is read once.
///
/// ```
/// # use gannet_guest::testing::MockContainer;
/// use gannet_guest::{Field, FieldSet};
///
/// let mut fields = FieldSet::new();
/// let namespace = fields.add(Field::Namespace);
/// let team = fields.add(Field::PodLabel("team".into()));
/// assert_eq!(fields.add(Field::Namespace), namespace); // already there: same slot
///
/// let record = gannet_guest::Container::from(
///     MockContainer::new().namespace("shop").pod_label("team", "payments"),
/// );
/// let values = record.select(&fields);
/// assert_eq!(values.at(namespace), Some("shop"));
/// assert_eq!(values.at(team), Some("payments"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct FieldSet {
    fields: Vec<Field>,
}

/// Where one field of a [`FieldSet`] is in each [`Selection`] read with that set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot(usize);

impl FieldSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `field` (unless it is already in the set) and returns its slot.
    pub fn add(&mut self, field: Field) -> Slot {
        if let Some(index) = self.fields.iter().position(|f| same_field(f, &field)) {
            return Slot(index);
        }
        self.fields.push(field);
        Slot(self.fields.len() - 1)
    }

    /// The fields, in slot order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// How many fields the set reads.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when the set reads nothing.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl AsRef<[Field]> for FieldSet {
    fn as_ref(&self) -> &[Field] {
        &self.fields
    }
}

/// True when `a` and `b` read the same value (the generated type has no `PartialEq`).
fn same_field(a: &Field, b: &Field) -> bool {
    use Field as F;
    match (a, b) {
        (F::Label(x), F::Label(y))
        | (F::PodLabel(x), F::PodLabel(y))
        | (F::Annotation(x), F::Annotation(y))
        | (F::PodAnnotation(x), F::PodAnnotation(y))
        | (F::Env(x), F::Env(y))
        | (F::Tag(x), F::Tag(y)) => x == y,
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

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

    /// The value of the field at `slot` of the [`FieldSet`] this was read with; `None`
    /// when the record has no such value.
    pub fn at(&self, slot: Slot) -> Option<&str> {
        self.get(slot.0)
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
    fn a_set_keeps_one_slot_per_distinct_field() {
        let mut set = FieldSet::new();
        let a = set.add(Field::PodLabel("a".into()));
        let b = set.add(Field::PodLabel("b".into()));
        let ns = set.add(Field::Namespace);
        assert_eq!(set.add(Field::PodLabel("a".into())), a);
        assert_ne!(set.add(Field::Label("a".into())), a);
        assert_eq!(set.add(Field::Namespace), ns);
        assert_eq!((a, b, ns), (Slot(0), Slot(1), Slot(2)));
        assert_eq!(set.len(), 4);
    }

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
