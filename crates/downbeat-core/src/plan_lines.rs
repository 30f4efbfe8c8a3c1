//! Where each task of a plan file is, by line: so a problem that names a task also says where
//! to look. Found from the text itself (a task's `key`, else its place among the `[[tasks]]`
//! tables or the `tasks:` list items); a task that cannot be found gets no line.

use crate::plan::{PlanFile, PlanFormat, task_label};

/// The line (1-based) of each task of `plan` in `text`, in the plan's order.
pub fn task_lines(text: &str, format: PlanFormat, plan: &PlanFile) -> Vec<Option<usize>> {
    let starts = starts(text, format);
    plan.tasks
        .iter()
        .enumerate()
        .map(|(i, t)| match &t.key {
            Some(k) => key_line(text, k).or_else(|| starts.get(i).copied()),
            None => starts.get(i).copied(),
        })
        .collect()
}

/// `message` with the line of every task it names: `- task `b`: …` becomes
/// `- task `b` (line 12): …`.
pub fn annotate(message: &str, text: &str, format: PlanFormat, plan: &PlanFile) -> String {
    let lines = task_lines(text, format, plan);
    let labels: Vec<(String, usize)> = plan
        .tasks
        .iter()
        .enumerate()
        .filter_map(|(i, t)| lines[i].map(|l| (task_label(i, t), l)))
        .collect();
    message
        .lines()
        .map(|line| {
            let body = line.trim_start_matches(' ').strip_prefix("- ");
            let Some(body) = body else {
                return line.to_owned();
            };
            match labels
                .iter()
                .find(|(label, _)| body.starts_with(&format!("{label}:")))
            {
                Some((label, n)) => {
                    let indent = &line[..line.len() - body.len()];
                    format!("{indent}{label} (line {n}){}", &body[label.len()..])
                }
                None => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The line that gives a task this key: `key = "k"` (TOML), `key: k` or `- key: k` (YAML),
/// `"key": "k"` (JSON).
fn key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim().trim_start_matches("- ").trim_start();
            let Some(rest) = l.strip_prefix("\"key\"").or_else(|| l.strip_prefix("key")) else {
                return false;
            };
            let Some(value) = rest.trim_start().strip_prefix(['=', ':']) else {
                return false;
            };
            let value = value.trim().trim_end_matches(',');
            let value = value.split(" #").next().unwrap_or(value).trim();
            value.trim_matches(['"', '\'']) == key
        })
        .map(|i| i + 1)
}

/// Where each task starts, in order: `[[tasks]]` headers (TOML), or the items of the top-level
/// `tasks:` list (YAML). JSON has none: only keys locate its tasks.
fn starts(text: &str, format: PlanFormat) -> Vec<usize> {
    match format {
        PlanFormat::Toml => text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim() == "[[tasks]]")
            .map(|(i, _)| i + 1)
            .collect(),
        PlanFormat::Yaml => {
            let mut out = Vec::new();
            let mut inside = false;
            let mut indent = None;
            for (i, l) in text.lines().enumerate() {
                if l.trim().is_empty() || l.trim_start().starts_with('#') {
                    continue;
                }
                if !l.starts_with([' ', '-']) {
                    inside = l.trim_end() == "tasks:";
                    continue;
                }
                if !inside {
                    continue;
                }
                let n = l.len() - l.trim_start().len();
                if l.trim_start().starts_with("- ") && indent.is_none_or(|d| d == n) {
                    indent = Some(n);
                    out.push(i + 1);
                }
            }
            out
        }
        PlanFormat::Json => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::parse;

    #[test]
    fn tasks_are_found_by_key_or_place_in_toml_and_yaml() {
        let toml = "[plan]\nname = \"x\"\n\n[[tasks]]\ntitle = \"First\"\n\n[[tasks]]\nkey = \"b\"\ntitle = \"B\"\n";
        let plan = parse(toml, PlanFormat::Toml).unwrap();
        assert_eq!(
            task_lines(toml, PlanFormat::Toml, &plan),
            [Some(4), Some(8)]
        );
        let yaml = "tasks:\n  - title: First\n    role: tester\n  - key: b\n    title: B\n";
        let plan = parse(yaml, PlanFormat::Yaml).unwrap();
        assert_eq!(
            task_lines(yaml, PlanFormat::Yaml, &plan),
            [Some(2), Some(4)]
        );
        let json =
            "{\"tasks\": [\n  {\"title\": \"First\"},\n  {\"key\": \"b\", \"title\": \"B\"}\n]}";
        let plan = parse(json, PlanFormat::Json).unwrap();
        assert_eq!(task_lines(json, PlanFormat::Json, &plan), [None, None]);
        let json = "{\"tasks\": [\n  {\n    \"key\": \"b\",\n    \"title\": \"B\"\n  }\n]}";
        let plan = parse(json, PlanFormat::Json).unwrap();
        assert_eq!(task_lines(json, PlanFormat::Json, &plan), [Some(3)]);
    }

    #[test]
    fn problems_get_the_line_of_the_task_they_name() {
        let toml = "[[tasks]]\ntitle = \"First\"\n\n[[tasks]]\nkey = \"b\"\ntitle = \"B\"\ndepends_on = [\"zzz\"]\n";
        let plan = parse(toml, PlanFormat::Toml).unwrap();
        let msg = "p.toml: the plan has 2 problems:\n  - task `b`: dependency `zzz` is unknown\n  - task #1 (\"First\"): role `x` is unknown\n  - something else";
        assert_eq!(
            annotate(msg, toml, PlanFormat::Toml, &plan),
            "p.toml: the plan has 2 problems:\n  - task `b` (line 5): dependency `zzz` is unknown\n  - task #1 (\"First\") (line 1): role `x` is unknown\n  - something else"
        );
    }
}
