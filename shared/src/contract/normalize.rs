//! Normalisation of the viewer attributes the answers break down by (device,
//! country, department) and print (name, email), as
//! `shared/contract/ANALYTICS.md` says; the write path stores values
//! normalised with these same functions.

/// The breakdown value for a missing, null or empty attribute.
pub const UNKNOWN: &str = "unknown";

/// A country or department longer than this many characters (after its
/// normalisation) is [`UNKNOWN`] (ANALYTICS.md).
pub const MAX_ATTRIBUTE_CHARS: usize = 255;

fn within_attribute_limit(s: &str) -> bool {
    s.len() <= MAX_ATTRIBUTE_CHARS || s.chars().nth(MAX_ATTRIBUTE_CHARS).is_none()
}

/// The devices the contract knows; anything else is [`UNKNOWN`].
pub const DEVICES: [&str; 4] = ["desktop", "mobile", "tablet", "tv"];

/// Removes surrounding blanks (Unicode white space, as `str::trim`).
pub fn trim_blanks(s: &str) -> &str {
    s.trim()
}

/// Device: the schema-1 string or schema-2 `device.type`, lower-cased;
/// anything but `desktop`, `mobile`, `tablet`, `tv` (including missing) is
/// `unknown`. Not trimmed: the contract only lower-cases.
pub fn normalize_device(device: Option<&str>) -> String {
    match device.map(str::to_lowercase) {
        Some(d) if DEVICES.contains(&d.as_str()) => d,
        _ => UNKNOWN.to_string(),
    }
}

/// Country: `location.country` upper-cased (full case mapping: `ß` is
/// `SS`); missing, null, empty, or over [`MAX_ATTRIBUTE_CHARS`] once
/// upper-cased is `unknown`. Not trimmed: the contract only upper-cases (a
/// country made of blanks only is nevertheless treated as empty).
pub fn normalize_country(country: Option<&str>) -> String {
    match country {
        Some(c) if !trim_blanks(c).is_empty() => {
            let upper = c.to_uppercase();
            if within_attribute_limit(&upper) {
                upper
            } else {
                UNKNOWN.to_string()
            }
        }
        _ => UNKNOWN.to_string(),
    }
}

/// Department: `profile.department` with surrounding blanks trimmed; `None`
/// when missing, null, empty after trimming, or over [`MAX_ATTRIBUTE_CHARS`].
/// The viewer list prints `None` as `null`, the breakdown as `unknown`
/// ([`department_or_unknown`]).
pub fn normalize_department(department: Option<&str>) -> Option<String> {
    department
        .map(trim_blanks)
        .filter(|d| !d.is_empty() && within_attribute_limit(d))
        .map(str::to_string)
}

/// Department for the `byDepartment` breakdown: [`normalize_department`] or
/// `unknown`.
pub fn department_or_unknown(department: Option<&str>) -> String {
    normalize_department(department).unwrap_or_else(|| UNKNOWN.to_string())
}

/// Name and email for the viewer list: as written, `None` when missing, null
/// or blank (the contract normalises neither; empty is treated as missing,
/// as it is for the department).
pub fn normalize_optional_text(text: Option<&str>) -> Option<String> {
    text.filter(|t| !trim_blanks(t).is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_attributes() {
        assert_eq!(normalize_device(Some("Desktop")), "desktop");
        assert_eq!(normalize_device(Some("TV")), "tv");
        assert_eq!(normalize_device(Some("smartwatch")), "unknown");
        assert_eq!(normalize_device(Some("")), "unknown");
        assert_eq!(normalize_device(None), "unknown");
        assert_eq!(normalize_country(Some("fr")), "FR");
        assert_eq!(normalize_country(Some("")), "unknown");
        assert_eq!(normalize_country(None), "unknown");
        assert_eq!(department_or_unknown(Some(" Marketing ")), "Marketing");
        assert_eq!(department_or_unknown(Some("  ")), "unknown");
        assert_eq!(department_or_unknown(None), "unknown");
        assert_eq!(normalize_department(Some("")), None);
        assert_eq!(
            normalize_department(Some("\tSales ")),
            Some("Sales".to_string())
        );
        assert_eq!(
            normalize_optional_text(Some("Zoë")),
            Some("Zoë".to_string())
        );
        assert_eq!(normalize_optional_text(Some("")), None);
    }
}
