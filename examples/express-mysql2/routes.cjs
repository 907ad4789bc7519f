'use strict';
// The example app's routes. server.js (CommonJS) and server.mjs (ESM) load express and mysql2
// their own way and hand them in here, so that both loading paths are exercised.
const http = require('node:http');

/** mysql2 connection settings from MYSQL_URL (default: the local MariaDB, database `test`). */
function mysqlUrl() {
  return process.env.MYSQL_URL || 'mysql://root@127.0.0.1:3306/test';
}

function getJson(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
  });
}

/**
 * Routes:
 *   GET /hello            no I/O
 *   GET /users/:id        mysql2 promise pool, parameterised query
 *   GET /db               mysql2 callback API on a pooled connection, literal values in the SQL
 *   GET /hop              calls DOWNSTREAM_URL (/hello of another service) over http
 *   GET /error            throws; express answers 500
 *   GET /health           meant to be excluded from tracing (FORKTRACE_EXCLUDED_URLS)
 */
function buildApp(express, mysql) {
  const pool = mysql.createPool({ uri: mysqlUrl(), connectionLimit: 4, connectTimeout: 2000 });
  const promisePool = pool.promise();
  const app = express();

  app.get('/hello', (_req, res) => {
    res.json({ hello: 'world', pid: process.pid });
  });

  app.get('/users/:id', async (req, res, next) => {
    try {
      const [rows] = await promisePool.query('SELECT ? AS id, CONCAT(?, ?) AS name', [
        Number(req.params.id),
        'user-',
        req.params.id,
      ]);
      res.json(rows[0]);
    } catch (err) {
      next(err);
    }
  });

  app.get('/db', (_req, res, next) => {
    pool.getConnection((err, conn) => {
      if (err) return next(err);
      conn.query("SELECT 42 AS answer, 'private literal' AS note", (qerr, rows) => {
        conn.release();
        if (qerr) return next(qerr);
        res.json(rows[0]);
      });
    });
  });

  app.get('/hop', async (_req, res, next) => {
    try {
      const downstream = process.env.DOWNSTREAM_URL;
      if (!downstream) return res.status(500).json({ error: 'DOWNSTREAM_URL is not set' });
      const r = await getJson(downstream);
      res.status(r.status).type('json').send(r.body);
    } catch (err) {
      next(err);
    }
  });

  app.get('/error', () => {
    throw new Error('boom: the /error route always fails');
  });

  app.get('/health', (_req, res) => {
    res.send('ok');
  });

  return { app, pool };
}

/** Starts listening on PORT (0 = any) and prints one JSON line the tests and the demo read. */
function start(express, mysql) {
  const { app, pool } = buildApp(express, mysql);
  const server = app.listen(Number(process.env.PORT || 3000), '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ listening: server.address().port, pid: process.pid }) + '\n');
  });
  if (process.env.EXAMPLE_EXIT_ON_SIGTERM === 'true') {
    // An app with its own graceful stop: close the server and the pool, then let Node exit.
    process.on('SIGTERM', () => {
      process.stdout.write(JSON.stringify({ sigterm: process.pid }) + '\n');
      server.close(() => pool.end(() => process.stdout.write(JSON.stringify({ closed: process.pid }) + '\n')));
    });
  }
  return { server, pool };
}

module.exports = { buildApp, start, mysqlUrl };
