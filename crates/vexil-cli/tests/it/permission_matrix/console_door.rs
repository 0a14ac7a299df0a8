//! The permission table's console door: who each caller is with a session (signed
//! in, disabled after signing in, elevated, or only a Bearer header, which opens
//! nothing there), and the one request a console cell sends.

use secrecy::SecretString;
use vexil_app::Admin;
use vexil_core::Role;

use super::callers::{PASSWORD, ROLE_ACCOUNTS, World, flag_risk};
use super::cells::Cell;
use super::prepared::confirmation;

impl World {
    fn fresh_name(&self) -> String {
        let n = self
            .fresh
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("gone{n}")
    }

    /// A client as caller `caller` on the console, with a new session each time, and
    /// the name (and password) it signs in with.
    pub(crate) async fn console_client(&self, caller: usize) -> (reqwest::Client, String, String) {
        let mut headers = reqwest::header::HeaderMap::new();
        // A Bearer header opens nothing in the console: a revoked token, a client key.
        let bearer = match caller {
            2 => Some(&self.revoked),
            8 => Some(&self.client_key),
            9 => Some(&self.revoked_client_key),
            _ => None,
        };
        if let Some(bearer) = bearer {
            headers.insert("authorization", format!("Bearer {bearer}").parse().unwrap());
        }
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .unwrap();
        let name = match caller {
            0 => return (client, "nobody".to_owned(), PASSWORD.to_owned()),
            // A token is no password, nor is a client key.
            2 => return (client, "ops2".to_owned(), self.revoked.clone()),
            8 | 9 => return (client, "ops2".to_owned(), self.client_key.clone()),
            1 => {
                let name = self.fresh_name();
                self.app
                    .add_user(Admin::Cli, &name, Role::Ops, &SecretString::from(PASSWORD))
                    .await
                    .unwrap();
                name
            }
            3..=6 => ROLE_ACCOUNTS[caller - 3].to_owned(),
            _ => "root".to_owned(),
        };
        let (status, _) = self.sign_in(&client, &name, PASSWORD).await;
        assert_eq!(status, 303, "{name} signs in");
        if caller == 1 {
            self.app.disable_user(Admin::Cli, &name).await.unwrap();
        }
        if caller == 7 {
            let csrf = self.csrf(&client).await;
            let code = self.next_root_code();
            let (status, _) = self
                .post(
                    &client,
                    "/console/elevate",
                    &[("csrf", &csrf), ("totp", &code)],
                )
                .await;
            assert_eq!(status, 303, "root elevates");
        }
        (client, name, PASSWORD.to_owned())
    }

    async fn sign_in(&self, client: &reqwest::Client, name: &str, password: &str) -> (u16, String) {
        let page = client
            .get(format!("{}/console/sign-in", self.base))
            .send()
            .await
            .unwrap();
        let csrf = csrf_of(&page.text().await.unwrap());
        self.post(
            client,
            "/console/sign-in",
            &[("csrf", &csrf), ("name", name), ("password", password)],
        )
        .await
    }

    /// The session's CSRF token, or nothing when there is no session to have one.
    async fn csrf(&self, client: &reqwest::Client) -> String {
        let page = client
            .get(format!("{}/console/account", self.base))
            .send()
            .await
            .unwrap();
        if page.status() != 200 {
            return String::new();
        }
        csrf_of(&page.text().await.unwrap())
    }

    async fn post(
        &self,
        client: &reqwest::Client,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, String) {
        let response = client
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        status_and_location(&response)
    }

    pub(crate) async fn console(
        &self,
        (client, name, password): (&reqwest::Client, &str, &str),
        method: &str,
        path: &str,
        cell: &Cell,
        flag: &str,
        id: Option<i64>,
    ) -> (u16, String) {
        let from = self.value(flag).await;
        let (from_text, to_text) = (from.to_string(), (!from).to_string());
        let path = path
            .replace("{flag_key}", flag)
            .replace("{id}", &id.unwrap_or_default().to_string());
        let phrase = confirmation(flag_risk(cell.risk), flag).unwrap_or_default();
        if method == "GET" {
            let query = match path.as_str() {
                "/console/flags" => "?env=prod".to_owned(),
                "/console/elevate" => "?next=%2Fconsole%2Fflags".to_owned(),
                _ => String::new(),
            };
            let response = client
                .get(format!("{}{path}{query}", self.base))
                .send()
                .await
                .unwrap();
            return status_and_location(&response);
        }
        if path == "/console/sign-in" {
            return self.sign_in(client, name, password).await;
        }
        let csrf = self.csrf(client).await;
        let code;
        let form: Vec<(&str, &str)> = match path.as_str() {
            "/console/elevate" => {
                code = if cell.caller == 7 {
                    self.next_root_code()
                } else {
                    "000000".to_owned()
                };
                vec![("csrf", &csrf), ("totp", &code)]
            }
            "/console/account/totp" => vec![("csrf", &csrf), ("password", PASSWORD)],
            "/console/account/totp/confirm" => vec![("csrf", &csrf), ("code", "000000")],
            p if p.ends_with("/promote") => vec![("csrf", &csrf), ("confirmation", &phrase)],
            p if p.ends_with("/reject") => vec![("csrf", &csrf), ("reason", "a permission cell")],
            "/console/client-keys" => {
                vec![("csrf", &csrf), ("env", "prod"), ("app", "perm-console")]
            }
            "/console/reconcile" => vec![
                ("csrf", &csrf),
                ("flag", flag),
                ("env", "prod"),
                ("reason", "a permission cell"),
            ],
            // Confirmed, with the reason prod asks for: what the confirmation page sends.
            p if p.ends_with("/flip") => vec![
                ("csrf", &csrf),
                ("env", "prod"),
                ("from", &from_text),
                ("to", &to_text),
                ("confirm", "yes"),
                ("reason", "a permission cell"),
            ],
            _ => vec![("csrf", &csrf)],
        };
        self.post(client, &path, &form).await
    }
}

/// A console answer as the table judges it: its status and where it redirects.
fn status_and_location(response: &reqwest::Response) -> (u16, String) {
    let location = response
        .headers()
        .get("location")
        .map_or(String::new(), |v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), location)
}

pub(crate) fn csrf_of(body: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).expect("a form with a CSRF token") + marker.len();
    body[start..start + 64].to_owned()
}
