// Sign-in form: POST /v1/auth/login sets an HttpOnly session cookie.
"use strict";
(function () {
  const cfg = JSON.parse(document.getElementById("config").textContent);
  const t = (key) => window.vidiconText(cfg.lang, key);
  document.getElementById("heading").textContent = t("sign in");
  document.getElementById("user-label").textContent = t("user");
  document.getElementById("password-label").textContent = t("password");
  document.getElementById("submit").textContent = t("sign in");
  const form = document.getElementById("login");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = JSON.stringify({
      username: form.elements.username.value,
      password: form.elements.password.value,
    });
    const response = await fetch("/v1/auth/login", {
      method: "POST", headers: { "content-type": "application/json" }, body,
    });
    if (response.ok) location.reload();
    else document.getElementById("error").textContent = t("sign in failed");
  });
})();
