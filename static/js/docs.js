// Swagger UI for /docs, from the app's own files (no CDN, no inline script).
const root = (document.querySelector('meta[name="bptt-root"]')?.content || "").replace(/\/$/, "");
window.ui = SwaggerUIBundle({
  url: `${root}/openapi.json`,
  dom_id: "#swagger-ui",
  deepLinking: true,
  defaultModelsExpandDepth: 0,
  tryItOutEnabled: true,
});
