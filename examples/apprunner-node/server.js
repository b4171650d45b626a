// A small web app deployed from an apprunner.yaml: Node's standard library only.
const http = require("http");
const port = Number(process.env.PORT || 8080);
const server = http.createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "text/plain" });
  res.end(req.url === "/healthz" ? "ok\n" : "node app v1\n");
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
server.listen(port, () => console.log(`node app v1: listening on :${port}`));
