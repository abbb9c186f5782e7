//! A small read-only model of the Bicep templates, built on the tree-sitter-bicep syntax tree:
//! resources with their type and body, object properties, literals and variables.

use std::fs;
use std::path::{Path, PathBuf};

use tree_sitter::{Node, Parser, Tree};

/// The repository root (the `tests` crate sits directly under it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.bicep` file under `infra/` (outside `node_modules`), parsed, in path order.
pub fn infra_files() -> Vec<BicepFile> {
    let mut paths = Vec::new();
    collect_bicep_paths(&repo_root().join("infra"), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let source = fs::read_to_string(&path)
                .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
            let relative = path
                .strip_prefix(repo_root())
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            BicepFile::parse(relative, source)
        })
        .collect()
}

fn collect_bicep_paths(dir: &Path, paths: &mut Vec<PathBuf>) {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|error| panic!("read {}: {error}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Installed npm packages (infra/local) and hidden folders hold no templates of ours.
        if name == "node_modules" || name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect_bicep_paths(&path, paths);
        } else if path
            .extension()
            .is_some_and(|extension| extension == "bicep")
        {
            paths.push(path);
        }
    }
}

pub struct BicepFile {
    /// Path relative to the repository root, for messages.
    pub path: String,
    source: String,
    tree: Tree,
}

impl BicepFile {
    pub fn parse(path: impl Into<String>, source: impl Into<String>) -> Self {
        let source = source.into();
        let mut parser = Parser::new();
        parser
            .set_language(&tree_sitter_bicep::LANGUAGE.into())
            .expect("the tree-sitter-bicep grammar matches the tree-sitter version");
        let tree = parser
            .parse(&source, None)
            .expect("the parser returns a tree");
        Self {
            path: path.into(),
            source,
            tree,
        }
    }

    /// The whole file.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn text(&self, node: Node<'_>) -> &str {
        node.utf8_text(self.source.as_bytes()).unwrap_or_default()
    }

    /// `path:line` of a node (1-based line), for messages.
    pub fn location(&self, node: Node<'_>) -> String {
        format!("{}:{}", self.path, node.start_position().row + 1)
    }

    /// Every ERROR and MISSING node as `path:line:column: what`.
    pub fn syntax_errors(&self) -> Vec<String> {
        let mut errors = Vec::new();
        for node in descendants(self.tree.root_node()) {
            let position = node.start_position();
            let at = format!("{}:{}:{}", self.path, position.row + 1, position.column + 1);
            if node.is_missing() {
                errors.push(format!("{at}: missing `{}`", node.kind()));
            } else if node.is_error() {
                let snippet: String = self.text(node).chars().take(60).collect();
                errors.push(format!("{at}: cannot parse `{snippet}`"));
            }
        }
        errors
    }

    /// Resources declared in this file, including `existing` references.
    pub fn resources(&self) -> Vec<Resource<'_>> {
        named_children(self.tree.root_node())
            .into_iter()
            .filter(|node| node.kind() == "resource_declaration")
            .filter_map(|node| Resource::from_declaration(self, node))
            .collect()
    }

    /// Modules this file declares (`module symbol 'path' = {...}`), loops included.
    pub fn modules(&self) -> Vec<Module<'_>> {
        named_children(self.tree.root_node())
            .into_iter()
            .filter(|node| node.kind() == "module_declaration")
            .filter_map(|node| Module::from_declaration(self, node))
            .collect()
    }

    /// The value expression of the top-level `var name = ...`.
    pub fn variable(&self, name: &str) -> Option<Node<'_>> {
        self.top_level_value("variable_declaration", name)
    }

    /// The default value of the top-level `param name type = ...` (the type when it has none).
    pub fn parameter_default(&self, name: &str) -> Option<Node<'_>> {
        self.top_level_value("parameter_declaration", name)
    }

    /// The body expression of the top-level `func name(...) type => ...`.
    pub fn function_body(&self, name: &str) -> Option<Node<'_>> {
        self.top_level_value("user_defined_function", name)
    }

    fn top_level_value(&self, kind: &str, name: &str) -> Option<Node<'_>> {
        named_children(self.tree.root_node())
            .into_iter()
            .filter(|node| node.kind() == kind)
            .find(|node| {
                named_children(*node)
                    .first()
                    .is_some_and(|identifier| self.text(*identifier) == name)
            })
            .and_then(|node| named_children(node).last().copied())
    }

    /// The literal contents of every string in the file (strings with interpolation included,
    /// with the interpolated parts left out).
    pub fn string_contents(&self) -> Vec<String> {
        descendants(self.tree.root_node())
            .into_iter()
            .filter(|node| node.kind() == "string")
            .map(|node| {
                named_children(node)
                    .into_iter()
                    .filter(|part| part.kind() == "string_content")
                    .map(|part| self.text(part))
                    .collect()
            })
            .collect()
    }

    /// The value of a literal (string without interpolation, number, boolean), unquoted.
    pub fn literal(&self, node: Node<'_>) -> Option<String> {
        match node.kind() {
            "number" | "boolean" => Some(self.text(node).to_owned()),
            "string" => {
                let mut value = String::new();
                for part in named_children(node) {
                    match part.kind() {
                        "string_content" => value.push_str(self.text(part)),
                        "escape_sequence" => value.push_str(&unescape(self.text(part))),
                        _ => return None,
                    }
                }
                Some(value)
            }
            _ => None,
        }
    }

    /// A string's source between the quotes, interpolations kept as `${...}`.
    pub fn template(&self, node: Node<'_>) -> Option<String> {
        (node.kind() == "string").then(|| self.text(node).trim_matches('\'').to_owned())
    }

    /// The literal strings of an array literal.
    pub fn string_array(&self, node: Node<'_>) -> Option<Vec<String>> {
        if node.kind() != "array" {
            return None;
        }
        named_children(node)
            .into_iter()
            .map(|item| self.literal(item))
            .collect()
    }

    /// `key: value` pairs of an object literal, keys unquoted.
    pub fn object_properties<'t>(&self, object: Node<'t>) -> Vec<(String, Node<'t>)> {
        if object.kind() != "object" {
            return Vec::new();
        }
        named_children(object)
            .into_iter()
            .filter(|property| property.kind() == "object_property")
            .filter_map(|property| {
                let parts = named_children(property);
                let (key, value) = (parts.first()?, parts.last()?);
                let key = self
                    .literal(*key)
                    .unwrap_or_else(|| self.text(*key).trim_end_matches('?').to_owned());
                Some((key, *value))
            })
            .collect()
    }

    /// Follows a dotted path (`properties.cors.allowedOrigins`, `eventHandlers[0].auth`) through
    /// object and array literals.
    pub fn property<'t>(&self, mut node: Node<'t>, path: &str) -> Option<Node<'t>> {
        for segment in path.split('.') {
            let (key, index) = match segment.split_once('[') {
                Some((key, rest)) => (key, rest.trim_end_matches(']').parse::<usize>().ok()),
                None => (segment, None),
            };
            node = self
                .object_properties(node)
                .into_iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value)?;
            if let Some(index) = index {
                node = *named_children(node).get(index)?;
            }
        }
        Some(node)
    }
}

/// One `resource symbol 'Type@version' [existing] = ...` declaration.
pub struct Resource<'f> {
    pub file: &'f BicepFile,
    pub symbol: String,
    /// `Microsoft.Web/sites@2024-11-01`.
    pub type_and_version: String,
    pub existing: bool,
    /// The object literal that describes the resource (inside any `if` or `for`).
    pub body: Node<'f>,
    /// The collection a `for` loop iterates, when the declaration is a loop.
    pub loop_collection: Option<Node<'f>>,
    /// The text of each decorator (`batchSize(1)`).
    pub decorators: Vec<String>,
    declaration: Node<'f>,
}

impl<'f> Resource<'f> {
    fn from_declaration(file: &'f BicepFile, declaration: Node<'f>) -> Option<Self> {
        let parts = named_children(declaration);
        let symbol = file.text(*parts.first()?).to_owned();
        let type_and_version = file.literal(*parts.get(1)?)?;
        let existing = children(declaration)
            .iter()
            .any(|child| child.kind() == "existing");
        let value = *parts.last()?;
        let (body, loop_collection) = match value.kind() {
            "for_statement" => {
                let body = value.child_by_field_name("body")?;
                let collection = children(value)
                    .into_iter()
                    .skip_while(|child| child.kind() != "in")
                    .find(|child| child.is_named() && child.kind() != "comment");
                (unwrap_if(body)?, collection)
            }
            _ => (unwrap_if(value)?, None),
        };
        let decorators = declaration
            .prev_named_sibling()
            .filter(|sibling| sibling.kind() == "decorators")
            .map(|decorators| {
                named_children(decorators)
                    .into_iter()
                    .map(|decorator| file.text(decorator).trim_start_matches('@').to_owned())
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            file,
            symbol,
            type_and_version,
            existing,
            body,
            loop_collection,
            decorators,
            declaration,
        })
    }

    /// `Microsoft.Web/sites`.
    pub fn resource_type(&self) -> &str {
        self.type_and_version.split('@').next().unwrap_or_default()
    }

    pub fn property(&self, path: &str) -> Option<Node<'f>> {
        self.file.property(self.body, path)
    }

    pub fn literal(&self, path: &str) -> Option<String> {
        self.property(path).and_then(|node| self.file.literal(node))
    }

    /// `path:line symbol`, for messages.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.file.location(self.declaration), self.symbol)
    }
}

/// One `module symbol 'path' = {...}` declaration.
pub struct Module<'f> {
    pub file: &'f BicepFile,
    pub symbol: String,
    /// The template it deploys, as written (`modules/network.bicep`).
    pub path: String,
    /// The object literal with its `name`, `params` and `dependsOn`.
    pub body: Node<'f>,
}

impl<'f> Module<'f> {
    fn from_declaration(file: &'f BicepFile, declaration: Node<'f>) -> Option<Self> {
        let parts = named_children(declaration);
        let symbol = file.text(*parts.first()?).to_owned();
        let path = file.literal(*parts.get(1)?)?;
        let value = *parts.last()?;
        let body = match value.kind() {
            "for_statement" => unwrap_if(value.child_by_field_name("body")?)?,
            _ => unwrap_if(value)?,
        };
        Some(Self {
            file,
            symbol,
            path,
            body,
        })
    }

    /// The source text of the parameter `name` it passes, if it passes one.
    pub fn param(&self, name: &str) -> Option<&'f str> {
        self.file
            .property(self.body, &format!("params.{name}"))
            .map(|node| self.file.text(node))
    }
}

/// Every resource in the templates (not `existing` references) of the given type.
pub fn declared<'f>(files: &'f [BicepFile], resource_type: &str) -> Vec<Resource<'f>> {
    files
        .iter()
        .flat_map(BicepFile::resources)
        .filter(|resource| !resource.existing && resource.resource_type() == resource_type)
        .collect()
}

fn unwrap_if(node: Node<'_>) -> Option<Node<'_>> {
    match node.kind() {
        "object" => Some(node),
        "if_statement" => named_children(node)
            .into_iter()
            .find(|child| child.kind() == "object"),
        _ => None,
    }
}

fn unescape(sequence: &str) -> String {
    match sequence {
        "\\'" => "'".into(),
        "\\\\" => "\\".into(),
        "\\n" => "\n".into(),
        "\\r" => "\r".into(),
        "\\t" => "\t".into(),
        "\\$" => "$".into(),
        other => other.into(),
    }
}

/// Named children without comments.
pub fn named_children(node: Node<'_>) -> Vec<Node<'_>> {
    let mut cursor = node.walk();
    node.named_children(&mut cursor)
        .filter(|child| child.kind() != "comment")
        .collect()
}

fn children(node: Node<'_>) -> Vec<Node<'_>> {
    let mut cursor = node.walk();
    node.children(&mut cursor).collect()
}

fn descendants(root: Node<'_>) -> Vec<Node<'_>> {
    let mut all = Vec::new();
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        all.push(node);
        stack.extend(children(node).into_iter().rev());
    }
    all
}
