//! Collecting findings from the detectors: one finding per id, evidence merged, ordered by
//! severity, then by an estimate of the difference's size, then by catalogue order.

use std::collections::BTreeMap;

use report::{Evidence, Finding, Fix, Severity};

use catalogue::Id;

/// A finding under construction.
#[derive(Debug, Clone)]
struct Draft {
    severity: Severity,
    /// Unitless size estimate used to order findings of equal severity (larger first).
    magnitude: f64,
    evidence: Vec<Evidence>,
    torch: Vec<String>,
    keras: Vec<String>,
}

/// Titles built from the pair's own values, per id, in the order the detectors gave them.
type Titles = BTreeMap<Id, Vec<String>>;

/// Titles made of a subject and the items that differ, per id ([`Findings::title_item`]).
type TitleItems = BTreeMap<Id, (String, Vec<String>)>;

/// What the detectors found so far, keyed by id.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    drafts: BTreeMap<Id, Draft>,
    titles: Titles,
    items: TitleItems,
}

/// One observation: `what`, the Keras value, the torch value, and the layer(s).
pub(crate) fn ev(
    what: impl Into<String>,
    keras: impl Into<String>,
    torch: impl Into<String>,
    layer: Option<String>,
) -> Evidence {
    Evidence {
        what: what.into(),
        keras: keras.into(),
        torch: torch.into(),
        layer,
    }
}

/// `keras ↔ torch` layer label.
pub(crate) fn pair_label(keras: &str, torch: &str) -> Option<String> {
    Some(if keras == torch {
        keras.to_string()
    } else {
        format!("{keras} ↔ {torch}")
    })
}

impl Findings {
    /// Adds (or merges into) the finding `id`: the higher severity and magnitude win,
    /// evidence and fixes are appended without duplicates.
    pub(crate) fn add(
        &mut self,
        id: Id,
        severity: Severity,
        magnitude: f64,
        evidence: Vec<Evidence>,
        torch_fix: impl Into<String>,
        keras_fix: impl Into<String>,
    ) {
        let d = self.drafts.entry(id).or_insert_with(|| Draft {
            severity,
            magnitude,
            evidence: Vec::new(),
            torch: Vec::new(),
            keras: Vec::new(),
        });
        d.severity = d.severity.min(severity);
        d.magnitude = d.magnitude.max(magnitude);
        for e in evidence {
            if !d.evidence.contains(&e) {
                d.evidence.push(e);
            }
        }
        for (list, fix) in [
            (&mut d.torch, torch_fix.into()),
            (&mut d.keras, keras_fix.into()),
        ] {
            add_fix(list, fix);
        }
    }

    /// Gives the finding `id` a title built from this pair's values (several calls for the
    /// same id, e.g. one per layer, are kept in order; distinct ones are joined). Without one
    /// the catalogue's generic title is used, which must then state no value.
    pub(crate) fn set_title(&mut self, id: Id, title: impl Into<String>) {
        let t = title.into();
        let list = self.titles.entry(id).or_default();
        if !list.contains(&t) {
            list.push(t);
        }
    }

    /// Adds one differing item to the title of `id`, which reads `<subject>: <item>, <item>`
    /// (e.g. "RMSprop differs: learning rate (Keras 0.001, torch 0.01)") when several
    /// detectors each find one part of the same finding; the first subject given is kept.
    pub(crate) fn title_item(
        &mut self,
        id: Id,
        subject: impl Into<String>,
        item: impl Into<String>,
    ) {
        let (_, list) = self
            .items
            .entry(id)
            .or_insert_with(|| (subject.into(), Vec::new()));
        let item = item.into();
        if !list.contains(&item) {
            list.push(item);
        }
    }

    /// Whether `id` was found.
    pub(crate) fn has(&self, id: Id) -> bool {
        self.drafts.contains_key(&id)
    }

    /// The findings, most serious first; of equal severity and magnitude in catalogue order,
    /// the ids parallax adds after the catalogue's in name order.
    pub(crate) fn into_findings(self) -> Vec<Finding> {
        let mut titles = self.titles;
        for (id, (subject, items)) in self.items {
            if !items.is_empty() {
                titles
                    .entry(id)
                    .or_default()
                    .insert(0, format!("{subject}: {}", items.join(", ")));
            }
        }
        let mut v: Vec<(Id, Draft)> = self.drafts.into_iter().collect();
        v.sort_by(|(ia, a), (ib, b)| {
            a.severity
                .cmp(&b.severity)
                .then(b.magnitude.total_cmp(&a.magnitude))
                .then(order(*ia).cmp(&order(*ib)))
                .then(ia.name().cmp(ib.name()))
        });
        v.into_iter()
            .map(|(id, d)| Finding {
                title: titles
                    .get(&id)
                    .filter(|t| !t.is_empty())
                    .map_or_else(|| id.title().to_string(), |t| join_titles(t)),
                id: id.name().to_string(),
                severity: d.severity,
                impact: None,
                evidence: d.evidence,
                fix: Fix {
                    torch: join_fixes(d.torch),
                    keras: join_fixes(d.keras),
                },
            })
            .collect()
    }
}

/// Several titles of one finding (one per layer, say) in one line: those that share their
/// subject (the text before the first ": ") name it once, then their details.
fn join_titles(titles: &[String]) -> String {
    let mut groups: Vec<(Option<&str>, Vec<&str>)> = Vec::new();
    for t in titles {
        let (subject, detail) = match t.split_once(": ") {
            Some((s, d)) => (Some(s), d),
            None => (None, t.as_str()),
        };
        match groups
            .iter_mut()
            .find(|(s, _)| subject.is_some() && *s == subject)
        {
            Some((_, details)) => details.push(detail),
            None => groups.push((subject, vec![detail])),
        }
    }
    groups
        .into_iter()
        .map(|(s, d)| match s {
            Some(s) => format!("{s}: {}", d.join("; ")),
            None => d.join("; "),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Catalogue order of an id, the ids parallax adds after the catalogue.
fn order(id: Id) -> u32 {
    if id.in_catalogue() { id.number() } else { 100 }
}

const NOTHING: &str = "nothing to change on this side";

/// Adds a fix unless it is already there; "nothing to change" gives way to any real fix, and
/// of two fixes with the same code (before a `#` comment) the one with the comment stays.
fn add_fix(list: &mut Vec<String>, fix: String) {
    let code = |f: &str| f.split("  #").next().unwrap_or(f).trim().to_string();
    let is_nothing = |f: &str| f.trim_start_matches("# ").starts_with(NOTHING);
    if fix.is_empty() || list.contains(&fix) {
        return;
    }
    if is_nothing(&fix) {
        if list.is_empty() {
            list.push(fix);
        }
        return;
    }
    list.retain(|f| !is_nothing(f));
    if let Some(i) = list.iter().position(|f| code(f) == code(&fix)) {
        if fix.len() > list[i].len() {
            list[i] = fix;
        }
        return;
    }
    list.push(fix);
}

fn join_fixes(v: Vec<String>) -> String {
    if v.is_empty() {
        format!("# {NOTHING}")
    } else {
        v.iter()
            .flat_map(|f| f.lines())
            .map(as_code_line)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Fixes are code: a line of prose becomes a Python comment. A line is code when it starts
/// with a comment or `for`/`if`, its first word contains `(`, `=`, `.` or `[`, or it assigns
/// (` = ` before any comment).
fn as_code_line(line: &str) -> String {
    let first = line.split_whitespace().next().unwrap_or("");
    let code = line.starts_with('#')
        || line.starts_with("for ")
        || line.starts_with("if ")
        || first.contains(['(', '=', '.', '['])
        || line.split("  #").next().unwrap_or(line).contains(" = ");
    if code {
        line.to_string()
    } else {
        format!("# {line}")
    }
}

/// Python that reaches a torch parameter or module from `model`, given its `state_dict` key or
/// module path: `fc1.weight` → `model.fc1.weight`, `0.weight` → `model[0].weight`,
/// `layers.2.bias` → `model.layers[2].bias`.
pub(crate) fn torch_ref(path: &str) -> String {
    let mut out = String::from("model");
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        if seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(seg);
            out.push(']');
        } else {
            out.push('.');
            out.push_str(seg);
        }
    }
    out
}

#[cfg(test)]
mod title_tests;

#[cfg(test)]
mod torch_ref_tests {
    use super::torch_ref;

    #[test]
    fn state_dict_keys_become_python() {
        assert_eq!(torch_ref("fc1.weight"), "model.fc1.weight");
        assert_eq!(torch_ref("0.weight"), "model[0].weight");
        assert_eq!(torch_ref("layers.2.bias"), "model.layers[2].bias");
        assert_eq!(torch_ref("2"), "model[2]");
    }
}

#[cfg(test)]
mod join_titles_tests {
    use super::join_titles;

    #[test]
    fn titles_with_one_subject_name_it_once() {
        let t = |s: &str| s.to_string();
        assert_eq!(
            join_titles(&[
                t("Dense bias initialiser differs: Keras Zeros, torch U(±0.125)"),
                t("Dense bias initialiser differs: Keras Zeros, torch U(±0.0884)"),
                t("BatchNorm epsilon differs (Keras 0.001, torch 0.8)"),
            ]),
            "Dense bias initialiser differs: Keras Zeros, torch U(±0.125); Keras Zeros, torch \
             U(±0.0884); BatchNorm epsilon differs (Keras 0.001, torch 0.8)"
        );
        assert_eq!(join_titles(&[t("a: b")]), "a: b");
    }
}
