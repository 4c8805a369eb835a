//! djangorestframework-api-key 3.x on gunicorn: installed from PyPI into a venv under the
//! target directory (reused across runs), a minimal Django project written to a scratch
//! directory, one key created through the library's own API.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// What pip installs (ranges: the versions actually installed are reported with the table).
const REQUIREMENTS: &[&str] = &[
    "django>=4.2,<6",
    "djangorestframework>=3.15,<4",
    "djangorestframework-api-key>=3,<4",
    "gunicorn>=22,<28",
];

/// A ready Django project.
#[derive(Debug)]
pub(crate) struct Project {
    pub(crate) venv: PathBuf,
    pub(crate) dir: PathBuf,
    /// The key, created with `APIKey.objects.create_key`.
    pub(crate) key: String,
    /// `package==version` of what was installed.
    pub(crate) versions: String,
}

fn run(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("{what}: cannot start {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Creates (or reuses) the venv under `cache`.
fn venv(cache: &Path) -> Result<PathBuf> {
    let venv = cache.join("drf-venv");
    let marker = venv.join("keygate-bench-requirements.txt");
    let wanted = REQUIREMENTS.join("\n");
    if fs::read_to_string(&marker).is_ok_and(|m| m == wanted) && venv.join("bin/gunicorn").exists()
    {
        return Ok(venv);
    }
    eprintln!("keygate-bench: installing Django, DRF, djangorestframework-api-key and gunicorn from PyPI into {}", venv.display());
    let _ = fs::remove_dir_all(&venv);
    fs::create_dir_all(cache)?;
    run(
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        "python3 -m venv",
    )?;
    run(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(REQUIREMENTS),
        "pip install",
    )?;
    fs::write(&marker, wanted)?;
    Ok(venv)
}

const SETTINGS: &str = r#"
SECRET_KEY = "keygate-bench-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "rest_framework_api_key",
]
MIDDLEWARE = []
ROOT_URLCONF = "benchsite.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "bench.sqlite3"}}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework_api_key.permissions.HasAPIKey"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}
"#;

const URLS: &str = r#"
from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response


@api_view(["GET"])
def hello(request):
    return Response({"message": "hello"})


@api_view(["GET"])
@permission_classes([AllowAny])
def open_hello(request):
    return Response({"message": "hello"})


urlpatterns = [path("", hello), path("open", open_hello)]
"#;

const WSGI: &str = r#"
import os
from django.core.wsgi import get_wsgi_application
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
application = get_wsgi_application()
"#;

const MANAGE: &str = r#"
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"#;

const CREATE_KEY: &str = r#"
from rest_framework_api_key.models import APIKey
_, key = APIKey.objects.create_key(name="bench")
print("KEY=" + key)
"#;

/// Installs what is needed and prepares a project in `dir`.
pub(crate) fn prepare(cache: &Path, dir: &Path) -> Result<Project> {
    let venv = venv(cache)?;
    fs::create_dir_all(dir.join("benchsite"))?;
    fs::write(dir.join("benchsite/__init__.py"), "")?;
    fs::write(dir.join("benchsite/settings.py"), SETTINGS)?;
    fs::write(dir.join("benchsite/urls.py"), URLS)?;
    fs::write(dir.join("benchsite/wsgi.py"), WSGI)?;
    fs::write(dir.join("manage.py"), MANAGE)?;
    let python = venv.join("bin/python");
    run(
        Command::new(&python)
            .current_dir(dir)
            .args(["manage.py", "migrate", "-v", "0"]),
        "django migrate",
    )?;
    let out = run(
        Command::new(&python)
            .current_dir(dir)
            .args(["manage.py", "shell", "-c", CREATE_KEY]),
        "creating the API key",
    )?;
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("KEY="))
        .context("create_key printed no key")?
        .trim()
        .to_owned();
    let freeze = run(
        Command::new(venv.join("bin/pip")).args(["freeze", "--disable-pip-version-check"]),
        "pip freeze",
    )?;
    let versions = freeze
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("django=")
                || l.starts_with("djangorestframework")
                || l.starts_with("gunicorn=")
        })
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Project {
        venv,
        dir: dir.to_owned(),
        key,
        versions,
    })
}

/// Workers of the gunicorn scenario.
pub(crate) const WORKERS: u32 = 2;
/// Threads per worker.
pub(crate) const THREADS: u32 = 2;

/// The gunicorn command for `project` on `port` (pinned with `cpus` when given).
pub(crate) fn gunicorn(project: &Project, port: u16, cpus: Option<&str>) -> Command {
    let mut cmd = crate::children::command(&project.venv.join("bin/gunicorn"), cpus);
    cmd.current_dir(&project.dir)
        .arg("--bind")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--workers")
        .arg(WORKERS.to_string())
        .arg("--worker-class")
        .arg("gthread")
        .arg("--threads")
        .arg(THREADS.to_string())
        .arg("--log-level")
        .arg("warning")
        .arg("--graceful-timeout")
        .arg("2")
        .arg("benchsite.wsgi:application")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}
