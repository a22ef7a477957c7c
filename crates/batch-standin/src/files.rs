//! A node's file work: splitting a command line the way the agent does (no
//! shell), resource-file downloads, output-file pattern matching and blob
//! uploads to a container SAS URL.

use std::path::{Component, Path, PathBuf};

use serde_json::{Value, json};

/// Splits a command line into argv like the Linux node agent: words split on
/// whitespace, single quotes literal, double quotes with `\` escapes, no
/// variable expansion (that needs an explicit `/bin/sh -c '...'`).
pub(crate) fn split_command_line(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => cur.push(e),
                            Some(e) => {
                                cur.push('\\');
                                cur.push(e)
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(e) = chars.next() {
                    cur.push(e);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    if out.is_empty() {
        return Err("the command line is empty".into());
    }
    Ok(out)
}

/// A relative path that stays inside its directory: no root, no `..`.
pub(crate) fn is_contained(p: &str) -> bool {
    !p.is_empty()
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Matches one path component against a glob with `*`, `?`, `[abc]`, `[!a]`.
fn glob_component(pat: &[char], name: &[char]) -> bool {
    match pat.first() {
        None => name.is_empty(),
        Some('*') => (0..=name.len()).any(|i| glob_component(&pat[1..], &name[i..])),
        Some('?') => !name.is_empty() && glob_component(&pat[1..], &name[1..]),
        Some('[') => {
            let Some(end) = pat.iter().skip(1).position(|c| *c == ']').map(|p| p + 1) else {
                return name.first() == Some(&'[') && glob_component(&pat[1..], &name[1..]);
            };
            let Some(c) = name.first() else { return false };
            let (neg, set) = match pat[1] {
                '!' => (true, &pat[2..end]),
                _ => (false, &pat[1..end]),
            };
            (set.contains(c) != neg) && glob_component(&pat[end + 1..], &name[1..])
        }
        Some(p) => name.first() == Some(p) && glob_component(&pat[1..], &name[1..]),
    }
}

fn glob_path(pat: &[String], path: &[String]) -> bool {
    match pat.first().map(String::as_str) {
        None => path.is_empty(),
        Some("**") => (0..=path.len()).any(|i| glob_path(&pat[1..], &path[i..])),
        Some(p) => {
            !path.is_empty()
                && glob_component(
                    &p.chars().collect::<Vec<_>>(),
                    &path[0].chars().collect::<Vec<_>>(),
                )
                && glob_path(&pat[1..], &path[1..])
        }
    }
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Files matching an output `filePattern` relative to `wd`, each with the
/// blob name it gets: for a pattern without wildcards the destination
/// `path` itself (or the file name), otherwise `path/` + the file's path
/// below the pattern's fixed leading directories.
pub(crate) fn match_output(
    wd: &Path,
    pattern: &str,
    dest_path: Option<&str>,
) -> Vec<(PathBuf, String)> {
    let comps: Vec<String> = pattern
        .split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_owned)
        .collect();
    let fixed = comps.iter().take_while(|c| !has_wildcard(c)).count();
    let mut base = wd.to_path_buf();
    for c in &comps[..fixed] {
        if c == ".." {
            base.pop();
        } else {
            base.push(c);
        }
    }
    if fixed == comps.len() {
        if !base.is_file() {
            return Vec::new();
        }
        let name = match dest_path {
            Some(p) if !p.is_empty() => p.to_owned(),
            _ => comps.last().cloned().unwrap_or_default(),
        };
        return vec![(base, name)];
    }
    let rest = &comps[fixed..];
    let mut found = Vec::new();
    let mut stack = vec![(base.clone(), Vec::<String>::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let mut r = rel.clone();
            r.push(name);
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push((e.path(), r));
            } else if ft.is_file() && glob_path(rest, &r) {
                let blob = match dest_path {
                    Some(p) if !p.is_empty() => {
                        format!("{}/{}", p.trim_end_matches('/'), r.join("/"))
                    }
                    _ => r.join("/"),
                };
                found.push((e.path(), blob));
            }
        }
    }
    found.sort();
    found
}

/// A failure to prepare or upload, in the shape of `BatchTaskFailureInfo`.
pub(crate) fn failure(category: &str, code: &str, message: impl Into<String>) -> Value {
    let message = message.into();
    json!({"category": crate::casing::error_category(category), "code": code, "message": message,
           "details": [{"name": "Message", "value": message}]})
}

/// Downloads one resource file into `wd`, applying `fileMode` (default
/// `0770`, as on Linux nodes).
pub(crate) async fn download(http: &reqwest::Client, wd: &Path, rf: &Value) -> Result<(), Value> {
    let url = rf["httpUrl"].as_str().unwrap_or_default();
    let rel = rf["filePath"].as_str().unwrap_or_default();
    let target = wd.join(rel);
    let shown = redact(url);
    let resp = http.get(url).send().await.map_err(|e| {
        failure(
            "usererror",
            "BlobDownloadMiscError",
            format!("failed to download {shown}: {e}"),
        )
    })?;
    let status = resp.status();
    if !status.is_success() {
        let code = match status.as_u16() {
            403 | 401 => "BlobAccessDenied",
            404 => "BlobNotFound",
            _ => "BlobDownloadMiscError",
        };
        return Err(failure(
            "usererror",
            code,
            format!("downloading {shown} answered HTTP {status}"),
        ));
    }
    let bytes = resp.bytes().await.map_err(|e| {
        failure(
            "usererror",
            "BlobDownloadMiscError",
            format!("failed to read {shown}: {e}"),
        )
    })?;
    let io_err = |e: std::io::Error| {
        failure(
            "servererror",
            "DiskFull",
            format!("failed to write {rel}: {e}"),
        )
    };
    if let Some(parent) = target.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(io_err)?;
    }
    tokio::fs::write(&target, &bytes).await.map_err(io_err)?;
    let mode = rf["fileMode"].as_str().unwrap_or("0770");
    let mode = u32::from_str_radix(mode, 8).unwrap_or(0o770);
    use std::os::unix::fs::PermissionsExt;
    tokio::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
        .await
        .map_err(io_err)?;
    Ok(())
}

/// Uploads one file as a block blob below a container SAS URL.
pub(crate) async fn upload(
    http: &reqwest::Client,
    container_url: &str,
    blob: &str,
    file: &Path,
    headers: &[(String, String)],
) -> Result<(), Value> {
    let mut url = url::Url::parse(container_url).map_err(|e| {
        failure(
            "usererror",
            "FileUploadMiscError",
            format!("the containerUrl is not a URL: {e}"),
        )
    })?;
    {
        let mut segs = url.path_segments_mut().map_err(|_| {
            failure(
                "usererror",
                "FileUploadMiscError",
                "the containerUrl cannot take a path",
            )
        })?;
        segs.pop_if_empty();
        for s in blob.split('/').filter(|s| !s.is_empty()) {
            segs.push(s);
        }
    }
    let body = tokio::fs::read(file).await.map_err(|e| {
        failure(
            "usererror",
            "FileUploadMiscError",
            format!("failed to read {}: {e}", file.display()),
        )
    })?;
    let mut req = http
        .put(url.clone())
        .header("x-ms-blob-type", "BlockBlob")
        .header("x-ms-version", "2021-08-06")
        .header("Content-Length", body.len());
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let shown = redact(url.as_str());
    let resp = req.body(body).send().await.map_err(|e| {
        failure(
            "usererror",
            "FileUploadMiscError",
            format!("failed to upload to {shown}: {e}"),
        )
    })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let code = match status.as_u16() {
        401 | 403 => "FileUploadAccessDenied",
        404 => "FileUploadContainerNotFound",
        _ => "FileUploadMiscError",
    };
    Err(failure(
        "usererror",
        code,
        format!("uploading to {shown} answered HTTP {status}"),
    ))
}

/// A URL without its query: SAS tokens never reach logs or task status.
pub(crate) fn redact(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?<sas redacted>"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines() {
        assert_eq!(
            split_command_line("/bin/sh -c './trainer a.csv \"out put\" && echo $X'").unwrap(),
            vec!["/bin/sh", "-c", "./trainer a.csv \"out put\" && echo $X"]
        );
        assert_eq!(
            split_command_line(r#"echo "a \"b\"" c\ d"#).unwrap(),
            vec!["echo", "a \"b\"", "c d"]
        );
        assert!(split_command_line("echo 'x").is_err());
        assert!(split_command_line("   ").is_err());
    }

    #[test]
    fn globs() {
        let g = |p: &str, n: &str| {
            glob_component(
                &p.chars().collect::<Vec<_>>(),
                &n.chars().collect::<Vec<_>>(),
            )
        };
        assert!(g("std*.txt", "stdout.txt"));
        assert!(g("?.csv", "a.csv"));
        assert!(!g("?.csv", "ab.csv"));
        assert!(g("[ab]x", "bx"));
        assert!(!g("[!ab]x", "bx"));
        let p = |s: &str| s.split('/').map(str::to_owned).collect::<Vec<_>>();
        assert!(glob_path(&p("**/*.txt"), &p("a/b/c.txt")));
        assert!(glob_path(&p("**/*.txt"), &p("c.txt")));
        assert!(!glob_path(&p("*.txt"), &p("a/c.txt")));
    }

    #[test]
    fn containment() {
        assert!(is_contained("trainer"));
        assert!(is_contained("in/data.csv"));
        assert!(!is_contained("../x"));
        assert!(!is_contained("/etc/passwd"));
        assert!(!is_contained("a/../../x"));
    }
}
