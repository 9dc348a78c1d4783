//! Two answers compared field by field: what the release check prints and
//! what the tests report when an answer differs from its expectation.

use std::collections::BTreeSet;

/// One field where two JSON documents differ; `None` is a field one side lacks.
#[derive(Debug, Clone, PartialEq)]
struct FieldDifference {
    /// `attendance.byDevice.tv`, `polls[0].options[1].votes`.
    pub path: String,
    pub left: Option<serde_json::Value>,
    pub right: Option<serde_json::Value>,
}

impl FieldDifference {
    /// `path: <left_name> X ≠ <right_name> Y`.
    fn describe(&self, left_name: &str, right_name: &str) -> String {
        let show = |v: &Option<serde_json::Value>| {
            v.as_ref().map_or("(absent)".to_string(), |v| v.to_string())
        };
        format!(
            "{}: {left_name} {} ≠ {right_name} {}",
            self.path,
            show(&self.left),
            show(&self.right)
        )
    }
}

/// Every leaf where two JSON documents differ, in document order.
fn differing_fields(left: &serde_json::Value, right: &serde_json::Value) -> Vec<FieldDifference> {
    let mut out = Vec::new();
    walk(Some(left), Some(right), "", &mut out);
    out
}

fn walk(
    a: Option<&serde_json::Value>,
    b: Option<&serde_json::Value>,
    path: &str,
    out: &mut Vec<FieldDifference>,
) {
    use serde_json::Value;
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                walk(x.get(key), y.get(key), &format!("{path}.{key}"), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for i in 0..x.len().max(y.len()) {
                walk(x.get(i), y.get(i), &format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(FieldDifference {
            path: path.trim_start_matches('.').to_string(),
            left: a.cloned(),
            right: b.cloned(),
        }),
        _ => {}
    }
}

/// Where two documents differ, one line a field, each side under its name.
pub fn differences(
    left: &serde_json::Value,
    right: &serde_json::Value,
    left_name: &str,
    right_name: &str,
) -> Vec<String> {
    differing_fields(left, right)
        .iter()
        .map(|d| d.describe(left_name, right_name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_name_the_field() {
        let a = json!({"attendance": {"sessions": 3, "byDevice": {"tv": 1}}, "polls": [{"respondents": 2}]});
        let b = json!({"attendance": {"sessions": 4, "byDevice": {"tv": 1}}, "polls": [{"respondents": 2}]});
        assert_eq!(
            differences(&a, &b, "warehouse", "replay"),
            vec!["attendance.sessions: warehouse 3 ≠ replay 4".to_string()]
        );
        assert!(differences(&a, &a, "warehouse", "replay").is_empty());
    }

    #[test]
    fn a_missing_field_differs_from_a_null_one() {
        let with_null = json!({"endedAt": null, "polls": [1, 2]});
        let without = json!({"polls": [1]});
        assert_eq!(
            differences(&with_null, &without, "warehouse", "replay"),
            vec![
                "endedAt: warehouse null ≠ replay (absent)".to_string(),
                "polls[1]: warehouse 2 ≠ replay (absent)".to_string()
            ]
        );
    }
}
