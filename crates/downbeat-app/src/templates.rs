//! Workflow templates: a plan written with parameters, rendered strictly (minijinja, strict
//! undefined) and applied through the plan path. Three are built in — `simple`, `complex` and
//! `emergency` — and a project adds or overrides them with `.downbeat/templates/NAME.toml`.
//!
//! A template file has a `description`, the plan `body` (a Jinja template of a plan in
//! `format`, TOML by default), typed `[parameters.NAME]` (`string`, `int`, `bool`, `enum`;
//! `required`, or a `default`) and, optionally, `hold` (the key of one of its tasks: once
//! applied, nothing else in the project starts until that task is done) with its
//! `hold_reason`. A value is written into the body escaped for a double-quoted string, so
//! `title = "Fix {{ service }}"` stays valid whatever the value; the `slug` filter makes a value
//! fit for a key.
//!
//! Must never: render with a value the template does not declare, leave a parameter out of
//! the body without saying so (strict undefined), or write anything on a dry run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use downbeat_core::plan::{self, PlanFile, PlanFormat};
use downbeat_store::Hold;
use minijinja::value::Value;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Kind};
use crate::plan_preview::{Preview, preview};
use crate::plans::{self, ApplyRequest, Outcome};
use crate::project::{DIR, Project};

/// The built-in templates: (name, file).
const BUILTIN: [(&str, &str); 3] = [
    (
        "complex",
        include_str!("../templates/workflows/complex.toml"),
    ),
    (
        "emergency",
        include_str!("../templates/workflows/emergency.toml"),
    ),
    ("simple", include_str!("../templates/workflows/simple.toml")),
];

/// The kinds of parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamKind {
    String,
    Int,
    Bool,
    Enum,
}

/// One parameter of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    #[serde(rename = "type")]
    pub kind: ParamKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<toml::Value>,
    /// An `enum`'s allowed values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// A template file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    description: String,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    hold: Option<String>,
    #[serde(default)]
    hold_reason: Option<String>,
    body: String,
    #[serde(default)]
    parameters: BTreeMap<String, Param>,
}

/// A template, checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Template {
    pub name: String,
    /// `builtin`, or the file it was read from.
    pub source: String,
    pub description: String,
    #[serde(serialize_with = "format_name")]
    pub format: PlanFormat,
    /// The key (a template itself) of the task every other task waits for once applied.
    pub hold: Option<String>,
    pub hold_reason: Option<String>,
    pub parameters: BTreeMap<String, Param>,
    /// The plan, as a template.
    pub body: String,
}

fn format_name<S: serde::Serializer>(f: &PlanFormat, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match f {
        PlanFormat::Toml => "toml",
        PlanFormat::Yaml => "yaml",
        PlanFormat::Json => "json",
    })
}

/// The directory of a project's templates.
pub fn dir(root: &Path) -> PathBuf {
    root.join(DIR).join("templates")
}

/// Reads and checks a template file's text.
fn parse(name: &str, source: &str, text: &str) -> Result<Template, Error> {
    let bad = |m: String| Error::invalid(format!("template `{name}` ({source}): {m}"));
    let f: TemplateFile = toml::from_str(text).map_err(|e| bad(e.message().to_owned()))?;
    let format = match f.format.as_deref() {
        None | Some("toml") => PlanFormat::Toml,
        Some("yaml" | "yml") => PlanFormat::Yaml,
        Some("json") => PlanFormat::Json,
        Some(other) => return Err(bad(format!("format `{other}` is not toml, yaml or json"))),
    };
    for (p, param) in &f.parameters {
        check_param(p, param).map_err(bad)?;
    }
    Ok(Template {
        name: name.to_owned(),
        source: source.to_owned(),
        description: f.description,
        format,
        hold: f.hold.filter(|h| !h.trim().is_empty()),
        hold_reason: f.hold_reason,
        parameters: f.parameters,
        body: f.body,
    })
}

/// A parameter's declaration, checked: its name, its default's type, an enum's values.
fn check_param(name: &str, p: &Param) -> Result<(), String> {
    let ident = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ident {
        return Err(format!(
            "parameter `{name}`: a name is lowercase letters, digits and `_`, not starting with a digit"
        ));
    }
    if p.kind == ParamKind::Enum && p.values.is_empty() {
        return Err(format!("parameter `{name}`: an enum needs `values`"));
    }
    if p.kind != ParamKind::Enum && !p.values.is_empty() {
        return Err(format!("parameter `{name}`: only an enum has `values`"));
    }
    match (&p.default, p.required) {
        (Some(_), true) => {
            return Err(format!(
                "parameter `{name}`: a required parameter has no default"
            ));
        }
        (None, false) => {
            return Err(format!(
                "parameter `{name}`: give it a default, or make it required"
            ));
        }
        _ => {}
    }
    if let Some(d) = &p.default {
        typed(name, p, d)?;
    }
    Ok(())
}

/// A TOML value as the parameter's type.
fn typed(name: &str, p: &Param, v: &toml::Value) -> Result<Value, String> {
    let wrong = || format!("parameter `{name}` is {}, not {v}", kind_name(p.kind));
    Ok(match (p.kind, v) {
        (ParamKind::String, toml::Value::String(s)) => Value::from(s.clone()),
        (ParamKind::Int, toml::Value::Integer(i)) => Value::from(*i),
        (ParamKind::Bool, toml::Value::Boolean(b)) => Value::from(*b),
        (ParamKind::Enum, toml::Value::String(s)) if p.values.contains(s) => Value::from(s.clone()),
        (ParamKind::Enum, toml::Value::String(s)) => {
            return Err(format!(
                "parameter `{name}`: `{s}` is not one of {}",
                p.values.join(", ")
            ));
        }
        _ => return Err(wrong()),
    })
}

fn kind_name(k: ParamKind) -> &'static str {
    match k {
        ParamKind::String => "a string",
        ParamKind::Int => "an integer",
        ParamKind::Bool => "true or false",
        ParamKind::Enum => "one of its values",
    }
}

/// A `--set` value as the parameter's type.
fn from_text(name: &str, p: &Param, text: &str) -> Result<Value, String> {
    let v = match p.kind {
        ParamKind::String | ParamKind::Enum => toml::Value::String(text.to_owned()),
        ParamKind::Int => toml::Value::Integer(
            text.trim()
                .parse()
                .map_err(|_| format!("parameter `{name}` is an integer, not `{text}`"))?,
        ),
        ParamKind::Bool => toml::Value::Boolean(match text.trim() {
            "true" | "yes" | "1" => true,
            "false" | "no" | "0" => false,
            _ => return Err(format!("parameter `{name}` is true or false, not `{text}`")),
        }),
    };
    typed(name, p, &v)
}

/// Every template: the built-in ones and the project's (`root`), which override built-in ones
/// of the same name; sorted by name.
pub fn list(root: Option<&Path>) -> Result<Vec<Template>, Error> {
    let mut by_name: BTreeMap<String, Template> = BTreeMap::new();
    for (name, text) in BUILTIN {
        by_name.insert(name.to_owned(), parse(name, "builtin", text)?);
    }
    if let Some(root) = root {
        let d = dir(root);
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(by_name.into_values().collect());
            }
            Err(e) => return Err(Error::invalid(format!("cannot read {}: {e}", d.display()))),
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for path in files {
            let Some(name) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
                continue;
            };
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::invalid(format!("cannot read {}: {e}", path.display())))?;
            let t = parse(&name, &path.display().to_string(), &text)?;
            by_name.insert(name, t);
        }
    }
    Ok(by_name.into_values().collect())
}

/// The template called `name`.
pub fn find(root: Option<&Path>, name: &str) -> Result<Template, Error> {
    let all = list(root)?;
    let names: Vec<String> = all.iter().map(|t| t.name.clone()).collect();
    all.into_iter().find(|t| t.name == name).ok_or_else(|| {
        Error::not_found(format!(
            "no template `{name}` (there are: {})",
            names.join(", ")
        ))
        .with_hint("`downbeat template list` shows them; a project's own go in .downbeat/templates/NAME.toml")
    })
}

/// A template rendered with its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The plan's text, in the template's format.
    pub text: String,
    pub plan: PlanFile,
    /// Every parameter's value, defaults included.
    pub values: BTreeMap<String, serde_json::Value>,
    /// (the task's key, the reason) of the hold the plan asks for.
    pub hold: Option<(String, String)>,
}

/// The values of `sets` (`KEY=VALUE`) with the defaults: unknown keys and missing required
/// parameters are errors naming them.
fn values(t: &Template, sets: &[String]) -> Result<BTreeMap<String, Value>, Error> {
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    let mut unknown = Vec::new();
    let mut problems = Vec::new();
    for s in sets {
        let Some((k, v)) = s.split_once('=') else {
            problems.push(format!("`{s}` is not KEY=VALUE"));
            continue;
        };
        let k = k.trim();
        match t.parameters.get(k) {
            None => unknown.push(k.to_owned()),
            Some(p) => match from_text(k, p, v) {
                Ok(v) => {
                    out.insert(k.to_owned(), v);
                }
                Err(e) => problems.push(e),
            },
        }
    }
    let known = || t.parameters.keys().cloned().collect::<Vec<_>>().join(", ");
    if !unknown.is_empty() {
        problems.push(format!(
            "template `{}` has no parameter {} (its parameters: {})",
            t.name,
            unknown
                .iter()
                .map(|u| format!("`{u}`"))
                .collect::<Vec<_>>()
                .join(", "),
            known()
        ));
    }
    let missing: Vec<String> = t
        .parameters
        .iter()
        .filter(|(k, p)| p.required && !out.contains_key(*k))
        .map(|(k, _)| format!("`{k}`"))
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "template `{}` needs {}: --set {}",
            t.name,
            missing.join(", "),
            t.parameters
                .iter()
                .filter(|(k, p)| p.required && !out.contains_key(*k))
                .map(|(k, _)| format!("{k}=…"))
                .collect::<Vec<_>>()
                .join(" --set ")
        ));
    }
    if !problems.is_empty() {
        return Err(Error::invalid(problems.join("; ")).with_hint(format!(
            "`downbeat template show {}` lists its parameters",
            t.name
        )));
    }
    for (k, p) in &t.parameters {
        if let (false, Some(d)) = (out.contains_key(k), &p.default) {
            out.insert(k.clone(), typed(k, p, d).map_err(Error::invalid)?);
        }
    }
    Ok(out)
}

/// Escapes a value for a double-quoted string of TOML, YAML or JSON.
fn escape_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Lowercase letters, digits and `-`: a value made fit for a task key or a plan name.
fn slug(v: String) -> String {
    let mut s = String::new();
    for c in v.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    let s = s.trim_end_matches('-');
    s.chars()
        .take(48)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned()
}

/// A strict environment; `quoted`: values are escaped for a double-quoted string.
fn env(quoted: bool) -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_filter("slug", slug);
    if quoted {
        env.set_formatter(|out, _state, value| {
            let text = match value.as_str() {
                Some(s) => escape_quoted(s),
                None => value.to_string(),
            };
            out.write_str(&text).map_err(|e| {
                minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
            })
        });
    }
    env
}

/// The tag every task made from a template carries: `template:NAME`.
pub const TAG_PREFIX: &str = "template:";

/// Renders a template with `sets` (`KEY=VALUE`) and parses the plan it gives.
pub fn render(t: &Template, sets: &[String]) -> Result<Rendered, Error> {
    let vals = values(t, sets)?;
    let ctx = Value::from(vals.clone());
    let failed = |what: &str, e: minijinja::Error| {
        let mut m = e.to_string();
        if let Some(d) = e.detail() {
            m = format!("{}: {d}", e.kind());
        }
        Error::invalid(format!("template `{}`: cannot render {what}: {m}", t.name))
    };
    let text = env(true)
        .render_str(&t.body, ctx.clone())
        .map_err(|e| failed("its plan", e))?;
    let mut plan = plan::parse(&text, t.format).map_err(|e| {
        Error::invalid(format!(
            "template `{}` rendered a plan that does not parse: {}",
            t.name, e.message
        ))
    })?;
    // Every task says which template it came from: `downbeat patterns` learns per template.
    let mark = format!("{TAG_PREFIX}{}", t.name);
    for task in &mut plan.tasks {
        if !task.tags.contains(&mark) {
            task.tags.push(mark.clone());
        }
    }
    let hold = match &t.hold {
        Some(h) => {
            let plain = env(false);
            let key = plain
                .render_str(h, ctx.clone())
                .map_err(|e| failed("its hold", e))?;
            let reason = match &t.hold_reason {
                Some(r) => plain
                    .render_str(r, ctx.clone())
                    .map_err(|e| failed("its hold_reason", e))?,
                None => format!("template `{}`: only {key} may start", t.name),
            };
            Some((key, reason))
        }
        None => None,
    };
    Ok(Rendered {
        text,
        plan,
        values: vals
            .into_iter()
            .map(|(k, v)| (k, serde_json::to_value(&v).unwrap_or_default()))
            .collect(),
        hold,
    })
}

/// What applying a template found and did.
pub struct Applied {
    pub rendered: Rendered,
    pub outcome: Outcome,
    pub preview: Preview,
    /// The hold it added (`None`: it asks for none, it was there already, or a dry run).
    pub hold: Option<Hold>,
}

/// Renders a template and applies its plan (recorded under the plan's name, so applying it
/// again with the same values changes nothing); then adds the hold it asks for.
pub async fn apply(
    p: &Project,
    t: &Template,
    sets: &[String],
    dry_run: bool,
) -> Result<Applied, Error> {
    let rendered = render(t, sets)?;
    let req = ApplyRequest {
        shown: format!("template `{}`", t.name),
        fallback_name: Some(format!("template-{}", t.name)),
        dry_run,
        skip_conflicts: false,
        skip_option: "--skip-conflicts",
    };
    let outcome = plans::apply(p, &rendered.plan, &req).await?;
    let preview = preview(&outcome.prepared.validated, &p.plan_settings())?;
    let mut hold = None;
    if let (Some((key, reason)), false) = (&rendered.hold, dry_run) {
        let id = p.store.resolve_task(key).await.map_err(|_| {
            Error::invalid(format!(
                "template `{}` holds on `{key}`, which is no task of its plan",
                t.name
            ))
        })?;
        let held = p.store.holds().await?;
        if !held.iter().any(|h| h.task == Some(id)) {
            hold = Some(
                p.store
                    .add_hold(Some(id), reason, &p.actor().await?)
                    .await?,
            );
        }
    }
    Ok(Applied {
        rendered,
        outcome,
        preview,
        hold,
    })
}

/// A template's plan without a project: rendered and checked on its own.
pub fn check(t: &Template, sets: &[String]) -> Result<Rendered, Error> {
    let rendered = render(t, sets)?;
    plans::check_file(&rendered.plan, &format!("template `{}`", t.name))
        .map_err(|e| e.with_kind(Kind::Invalid))?;
    Ok(rendered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_template_renders_a_valid_plan_with_its_defaults() {
        let required = [
            ("simple", "task=Fix the \"login\" bug"),
            ("complex", "feature=Real-time notifications"),
            ("emergency", "service=billing api"),
        ];
        for t in list(None).unwrap() {
            let set = required
                .iter()
                .find(|(n, _)| *n == t.name)
                .map(|(_, s)| vec![s.to_string()])
                .unwrap();
            let r = check(&t, &set).unwrap_or_else(|e| panic!("{}: {}", t.name, e.message));
            assert!(r.plan.tasks.len() >= 4, "{}", t.name);
        }
        let e = find(None, "emergency").unwrap();
        let r = check(&e, &["service=billing api".into(), "security=true".into()]).unwrap();
        assert_eq!(r.plan.plan.name.as_deref(), Some("billing-api-incident"));
        assert!(
            r.plan
                .tasks
                .iter()
                .all(|t| t.priority.as_deref() == Some("critical"))
        );
        assert_eq!(
            r.plan.tasks.last().unwrap().key.as_deref(),
            Some("billing-api-postmortem")
        );
        assert_eq!(r.hold.unwrap().0, "billing-api-postmortem");
        let s = find(None, "simple").unwrap();
        let r = check(&s, &["task=Fix the \"login\" bug".into()]).unwrap();
        assert_eq!(r.plan.tasks[0].title, "Fix the \"login\" bug");
    }

    #[test]
    fn unknown_and_missing_parameters_are_named() {
        let t = find(None, "emergency").unwrap();
        let e = render(&t, &["servce=x".into(), "severity=sev9".into()]).unwrap_err();
        assert!(e.message.contains("no parameter `servce`"), "{}", e.message);
        assert!(
            e.message.contains("`sev9` is not one of sev1, sev2, sev3"),
            "{}",
            e.message
        );
        assert!(e.message.contains("needs `service`"), "{}", e.message);
        let e = render(&t, &["service=x".into(), "security=maybe".into()]).unwrap_err();
        assert!(e.message.contains("true or false"), "{}", e.message);
    }

    #[test]
    fn a_body_naming_an_undeclared_value_fails_to_render() {
        let t = parse(
            "t",
            "test",
            "description = \"d\"\nbody = '''\n[[tasks]]\ntitle = \"{{ nme }}\"\n'''\n[parameters.name]\ntype = \"string\"\nrequired = true\n",
        )
        .unwrap();
        let e = render(&t, &["name=x".into()]).unwrap_err();
        assert!(e.message.contains("undefined"), "{}", e.message);
        let bad = parse(
            "t",
            "test",
            "description = \"d\"\nbody = \"\"\n[parameters.n]\ntype = \"int\"\ndefault = \"two\"\n",
        )
        .unwrap_err();
        assert!(bad.message.contains("is an integer"), "{}", bad.message);
    }
}
