//! Class names as annotators write them ("Rumble", "ru", "RUMBLE ") mapped
//! onto one canonical name per class, so truth and detections compare.

use std::collections::BTreeMap;

/// Label normalisation: case and surrounding space never matter; aliases
/// map names onto others, and an alias to nothing drops the label's
/// selections from the evaluation (birds annotated in the same table).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelMap {
    aliases: BTreeMap<String, String>,
}

/// What a label maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mapped {
    /// Evaluate under this class name.
    Class(String),
    /// Leave the selection out.
    Dropped,
}

impl LabelMap {
    /// Parses `FROM=TO` aliases (`ru=rumble`; `bird=` drops `bird`).
    pub fn parse(pairs: &[String]) -> Result<Self, String> {
        let mut aliases = BTreeMap::new();
        for pair in pairs {
            let (from, to) = pair
                .split_once('=')
                .ok_or_else(|| format!("label mapping `{pair}` is not FROM=TO (e.g. ru=rumble, or bird= to leave bird out)"))?;
            let from = normalise(from);
            if from.is_empty() {
                return Err(format!("label mapping `{pair}` has nothing before `=`"));
            }
            aliases.insert(from, normalise(to));
        }
        Ok(Self { aliases })
    }

    /// Maps one label: trimmed, lower-cased, then through the aliases
    /// (once: `a=b` and `b=c` do not chain, so a mapping reads as written).
    pub fn map(&self, label: &str) -> Mapped {
        let name = normalise(label);
        match self.aliases.get(&name) {
            Some(to) if to.is_empty() => Mapped::Dropped,
            Some(to) => Mapped::Class(to.clone()),
            None => Mapped::Class(name),
        }
    }
}

fn normalise(label: &str) -> String {
    label.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[&str]) -> LabelMap {
        LabelMap::parse(&pairs.iter().map(|p| p.to_string()).collect::<Vec<_>>()).expect("valid")
    }

    #[test]
    fn case_space_and_aliases_make_one_class() {
        let m = map(&["ru=rumble", " Tr = Trumpet", "bird="]);
        for raw in ["Rumble", "rumble", "ru", " RU ", "RUMBLE"] {
            assert_eq!(m.map(raw), Mapped::Class("rumble".into()), "{raw}");
        }
        assert_eq!(m.map("tr"), Mapped::Class("trumpet".into()));
        assert_eq!(m.map("Bird"), Mapped::Dropped);
        assert_eq!(m.map("roar"), Mapped::Class("roar".into()));
    }

    #[test]
    fn mappings_do_not_chain_and_bad_ones_are_explained() {
        let m = map(&["a=b", "b=c"]);
        assert_eq!(m.map("a"), Mapped::Class("b".into()));
        let err = LabelMap::parse(&["rumble".into()]).unwrap_err();
        assert!(err.contains("FROM=TO"), "{err}");
        assert!(LabelMap::parse(&["=x".into()]).is_err());
    }
}
