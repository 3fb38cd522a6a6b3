//! Contact imports: upload a CSV, map its columns to fields with a preview of the first rows,
//! start it, and watch it run (the counts follow by HTMX while it does); the failed rows with
//! their reasons. The import itself is the command side's (`commands::imports`).

use std::path::{Path as FilePath, PathBuf};

use askama::Template;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use commands::imports::engine::{self, PlanError};
use commands::imports::options::ImportOptions;
use commands::imports::store::{self, ImportView, RowError};
use domain::identity::Action;
use domain::ImportId;
use http_kit::{secret, PathIds};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::page::{render, render_with, FieldErrors, Frame, PageError};
use crate::visit::{CsrfForm, Member};
use crate::WebState;

/// Rows of the file shown while mapping.
const PREVIEW_ROWS: usize = 5;

fn upload_path(s: &WebState, me: &Member, id: Uuid) -> PathBuf {
    engine::uploads_dir(&s.commands.imports.config)
        .join(me.tenant.0.to_string())
        .join(format!("{id}.csv"))
}

#[derive(Template)]
#[template(path = "imports/list.html")]
struct ListPage {
    frame: Frame,
    imports: Vec<ImportView>,
    errors: FieldErrors,
}

/// `GET /imports`
pub async fn list(State(s): State<WebState>, me: Member) -> Result<Response, PageError> {
    let imports = store::list(&s.pool, me.tenant.0, None, 50)
        .await
        .map_err(|e| PageError::internal(&e))?;
    Ok(render(&ListPage {
        frame: me.frame("Imports", "imports"),
        imports,
        errors: FieldErrors::none(),
    }))
}

/// `POST /imports`: a form with the CSRF token, then the file. The file is kept aside; the
/// mapping comes next.
pub async fn upload(
    State(s): State<WebState>,
    me: Member,
    mut parts: Multipart,
) -> Result<Response, PageError> {
    me.require(Action::Write)?;
    let refuse = |message: &str| -> Result<Response, PageError> {
        Err(PageError::Forbidden(message.to_owned()))
    };
    let Ok(Some(token)) = parts.next_field().await else {
        return refuse("The form's security token is missing; reload the page and retry.");
    };
    let token = token.text().await.unwrap_or_default();
    if token.is_empty()
        || !secret::constant_time_eq(token.as_bytes(), me.user.session.csrf_token.as_bytes())
    {
        return refuse("The form's security token is stale; reload the page and retry.");
    }
    let mut file = match parts.next_field().await {
        Ok(Some(f)) if f.name() == Some("file") => f,
        _ => return again(&s, &me, "Choose a CSV file to import.").await,
    };
    let name = file.file_name().unwrap_or("upload.csv").to_owned();
    let id = Uuid::now_v7();
    let path = upload_path(&s, &me, id);
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| PageError::internal(&e))?;
    }
    let max = s.commands.imports.config.max_bytes;
    let mut out = tokio::fs::File::create(&path)
        .await
        .map_err(|e| PageError::internal(&e))?;
    let mut written = 0u64;
    loop {
        let chunk = match file.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(_) => {
                let _ = tokio::fs::remove_file(&path).await;
                return again(&s, &me, "The upload was cut off; try again.").await;
            }
        };
        written += chunk.len() as u64;
        if written > max {
            drop(out);
            let _ = tokio::fs::remove_file(&path).await;
            let message = format!("The file is larger than {} MB.", max / 1_000_000);
            return again(&s, &me, &message).await;
        }
        out.write_all(&chunk)
            .await
            .map_err(|e| PageError::internal(&e))?;
    }
    out.flush().await.map_err(|e| PageError::internal(&e))?;
    if written == 0 {
        let _ = tokio::fs::remove_file(&path).await;
        return again(&s, &me, "The file is empty.").await;
    }
    let to = format!("/imports/{id}/map?name={}", crate::visit::url_encode(&name));
    Ok(Redirect::to(&to).into_response())
}

/// The list page with a message about the upload.
async fn again(s: &WebState, me: &Member, message: &str) -> Result<Response, PageError> {
    let imports = store::list(&s.pool, me.tenant.0, None, 50)
        .await
        .map_err(|e| PageError::internal(&e))?;
    let mut errors = FieldErrors::none();
    errors.set("file", message);
    Ok(render_with(
        StatusCode::UNPROCESSABLE_ENTITY,
        &ListPage {
            frame: me.frame("Imports", "imports"),
            imports,
            errors,
        },
    ))
}

/// The header and first rows of a CSV file.
fn head_of(path: &FilePath) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| e.to_string())?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let rows = reader
        .records()
        .take(PREVIEW_ROWS)
        .filter_map(Result::ok)
        .map(|r| r.iter().map(str::to_owned).collect())
        .collect();
    Ok((header, rows))
}

/// Where a column named `header` most likely goes (`""`: nowhere).
fn guess(header: &str, targets: &[(String, String)]) -> String {
    let h = header.trim().to_lowercase().replace([' ', '-'], "_");
    let aliases = [
        ("e_mail", "email"),
        ("mail", "email"),
        ("firstname", "first_name"),
        ("first", "first_name"),
        ("lastname", "last_name"),
        ("last", "last_name"),
        ("surname", "last_name"),
        ("mobile", "phone"),
        ("timezone", "time_zone"),
        ("tag", "tags"),
    ];
    let h = aliases
        .iter()
        .find(|(a, _)| *a == h)
        .map_or(h.clone(), |(_, t)| (*t).to_owned());
    targets
        .iter()
        .map(|(t, _)| t)
        .find(|t| **t == h || t.strip_prefix("fields.") == Some(h.as_str()))
        .cloned()
        .unwrap_or_default()
}

/// One column of the mapping.
struct Column {
    index: usize,
    header: String,
    target: String,
}

#[derive(Template)]
#[template(path = "imports/map.html")]
struct MapPage {
    frame: Frame,
    id: Uuid,
    name: String,
    columns: Vec<Column>,
    rows: Vec<Vec<String>>,
    targets: Vec<(String, String)>,
    tags: String,
    update_existing: bool,
    errors: FieldErrors,
}

async fn targets(s: &WebState, me: &Member) -> Result<Vec<(String, String)>, PageError> {
    let schema = s
        .commands
        .fields
        .schema(me.tenant)
        .await
        .map_err(|e| PageError::internal(&e))?;
    let mut out: Vec<(String, String)> = [
        ("email", "Email"),
        ("first_name", "First name"),
        ("last_name", "Last name"),
        ("phone", "Phone"),
        ("time_zone", "Time zone"),
        ("locale", "Locale"),
        ("tags", "Tags (separated by , or ;)"),
    ]
    .into_iter()
    .map(|(k, l)| (k.to_owned(), l.to_owned()))
    .collect();
    out.extend(
        schema
            .fields
            .values()
            .map(|d| (format!("fields.{}", d.key), d.label.clone())),
    );
    Ok(out)
}

#[derive(serde::Deserialize, Default)]
pub struct MapQuery {
    #[serde(default)]
    name: String,
}

/// `GET /imports/{id}/map`
pub async fn map_form(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<ImportId>,
    axum::extract::Query(q): axum::extract::Query<MapQuery>,
) -> Result<Response, PageError> {
    me.require(Action::Write)?;
    map_page(&s, &me, id.0, q.name, None, FieldErrors::none()).await
}

async fn map_page(
    s: &WebState,
    me: &Member,
    id: Uuid,
    name: String,
    chosen: Option<&std::collections::BTreeMap<String, String>>,
    errors: FieldErrors,
) -> Result<Response, PageError> {
    let path = upload_path(s, me, id);
    if !path.exists() {
        return Err(PageError::NotFound(
            "No such upload (it may have been started already).".into(),
        ));
    }
    let (header, rows) = match tokio::task::spawn_blocking(move || head_of(&path)).await {
        Ok(Ok(head)) => head,
        Ok(Err(why)) => {
            return Err(PageError::NotFound(format!(
                "That file is not a CSV file we can read: {why}"
            )))
        }
        Err(e) => return Err(PageError::internal(&e)),
    };
    let targets = targets(s, me).await?;
    let columns = header
        .iter()
        .enumerate()
        .map(|(index, h)| Column {
            index,
            target: match chosen {
                Some(c) => c.get(&format!("map.{index}")).cloned().unwrap_or_default(),
                None => guess(h, &targets),
            },
            header: h.clone(),
        })
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(render_with(
        status,
        &MapPage {
            frame: me.frame("Map the columns", "imports"),
            id,
            name,
            columns,
            rows,
            targets,
            tags: chosen
                .and_then(|c| c.get("tags").cloned())
                .unwrap_or_default(),
            update_existing: chosen.is_none_or(|c| c.contains_key("update_existing")),
            errors,
        },
    ))
}

/// `POST /imports/{id}/start`: the mapping checked against the fields and the file, then the
/// import runs in the background.
pub async fn start(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<ImportId>,
    CsrfForm(f): CsrfForm<std::collections::BTreeMap<String, String>>,
) -> Result<Response, PageError> {
    me.require(Action::Write)?;
    let path = upload_path(&s, &me, id.0);
    let p = path.clone();
    let header = match tokio::task::spawn_blocking(move || head_of(&p)).await {
        Ok(Ok((h, _))) => h,
        _ => return Err(PageError::NotFound("No such upload.".into())),
    };
    let mapping = header
        .iter()
        .enumerate()
        .filter_map(|(i, h)| {
            let target = f.get(&format!("map.{i}"))?.trim();
            (!target.is_empty()).then(|| (h.clone(), target.to_owned()))
        })
        .collect();
    let options = ImportOptions {
        mapping,
        tags: f
            .get("tags")
            .map(|t| {
                t.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        update_existing: f.contains_key("update_existing"),
        segment_id: None,
    };
    let name = f.get("name").cloned().unwrap_or_default();
    let file_name = Some(name.as_str()).filter(|n| !n.is_empty());
    match engine::create(
        &s.commands,
        me.tenant.0,
        &me.meta,
        &options,
        file_name,
        &path,
        id.0,
    )
    .await
    {
        Ok(_) => {
            engine::spawn(s.commands.clone(), me.tenant.0, id.0);
            Ok(Redirect::to(&format!("/imports/{}", id.0)).into_response())
        }
        Err(PlanError::Invalid(i)) => {
            let errors = FieldErrors::from(&i);
            map_page(&s, &me, id.0, name, Some(&f), errors).await
        }
        Err(PlanError::Technical(t)) => Err(PageError::internal(t.as_ref())),
    }
}

#[derive(Template)]
#[template(path = "imports/progress.html")]
struct Progress {
    import: ImportView,
    failures: Vec<RowError>,
}

impl Progress {
    fn running(&self) -> bool {
        self.import.status == "running"
    }
}

#[derive(Template)]
#[template(path = "imports/show.html")]
struct ShowPage {
    frame: Frame,
    progress: Progress,
}

async fn progress(s: &WebState, me: &Member, id: ImportId) -> Result<Progress, PageError> {
    let import = store::get(&s.pool, me.tenant.0, id.0)
        .await
        .map_err(|e| PageError::internal(&e))?
        .ok_or_else(|| PageError::NotFound("No such import.".into()))?;
    let failures = store::errors(&s.pool, me.tenant.0, id.0, 0, 100)
        .await
        .map_err(|e| PageError::internal(&e))?;
    Ok(Progress { import, failures })
}

/// `GET /imports/{id}`
pub async fn show(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<ImportId>,
) -> Result<Response, PageError> {
    let progress = progress(&s, &me, id).await?;
    Ok(render(&ShowPage {
        frame: me.frame("Import", "imports"),
        progress,
    }))
}

/// `GET /imports/{id}/progress` (HTMX, every second while it runs)
pub async fn progress_part(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<ImportId>,
) -> Result<Response, PageError> {
    Ok(render(&progress(&s, &me, id).await?))
}
