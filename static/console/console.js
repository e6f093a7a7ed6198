// wisp console: optional enhancements. Every form works without this file.
"use strict";

// Copy buttons: <button class="copy" data-copy="ELEMENT-ID">.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(() => {
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 2000);
  });
});

// The federated-credential form: show the issuer and subject the scenario
// fills, exactly as GitHub and Kubernetes emit them, while the user types.
// The server computes the same values again when the form is saved.
(() => {
  const form = document.getElementById("fic-form");
  if (!form) return;
  const issuerOut = document.getElementById("preview-issuer");
  const subjectOut = document.getElementById("preview-subject");
  const value = (id) => (form.elements[id] ? form.elements[id].value.trim() : "");
  const strip = (text, prefix) => (text.startsWith(prefix) ? text.slice(prefix.length) : text);
  const compute = () => {
    switch (form.dataset.scenario) {
      case "github": {
        const repo = value("github_repository");
        const v = value("github_value");
        const entity = value("github_entity");
        const subject = entity === "environment" ? `repo:${repo}:environment:${v}`
          : entity === "tag" ? `repo:${repo}:ref:refs/tags/${strip(v, "refs/tags/")}`
          : entity === "pull_request" ? `repo:${repo}:pull_request`
          : `repo:${repo}:ref:refs/heads/${strip(v, "refs/heads/")}`;
        if (form.elements.github_value) form.elements.github_value.disabled = entity === "pull_request";
        return ["https://token.actions.githubusercontent.com", repo ? subject : ""];
      }
      case "kubernetes":
        return [value("kubernetes_issuer"), `system:serviceaccount:${value("namespace")}:${value("service_account")}`];
      case "managed_identity":
        return [form.dataset.ownIssuer, value("identity")];
      default:
        return [value("issuer"), value("expression") ? `(expression) ${value("expression")}` : value("subject")];
    }
  };
  const update = () => {
    const [issuer, subject] = compute();
    issuerOut.textContent = issuer;
    subjectOut.textContent = subject;
  };
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  update();
})();
