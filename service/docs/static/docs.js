// Starts Swagger UI on this service's spec. A file, not an inline script: the page's policy allows no inline script.
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    // No badge from the public validator: the page loads nothing from another host.
    validatorUrl: null,
  });
});
