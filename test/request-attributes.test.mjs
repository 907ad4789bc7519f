// The server span's request attributes from forktrace's fastRequestAttributes
// (src/worker/request-attributes.ts) against instrumentation-http's own getIncomingRequestAttributes,
// on real requests sent byte for byte to a real server: plain paths, paths the URL parser rewrites,
// queries, absolute URLs, odd Host headers, proxies' headers, methods outside the known list.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { httpUtils } = require('../dist/worker/upstream-utils.js');
const { fastRequestAttributes } = require('../dist/worker/request-attributes.js');

const upstream = httpUtils.getIncomingRequestAttributes;
const logger = { verbose() {}, debug() {}, info() {}, warn() {}, error() {} };

/** Sends `head` (a request line and headers, without the blank line) and returns what both helpers gave. */
async function compare(server, head, options) {
  const seen = new Promise((resolve) => server.once('seen', resolve));
  server.options = options;
  const socket = net.connect(server.address().port, '127.0.0.1');
  socket.on('error', () => {});
  socket.end(`${head}\r\n\r\n`);
  const result = await Promise.race([seen, new Promise((r) => setTimeout(() => r(undefined), 2000))]);
  socket.destroy();
  return result;
}

async function withServer(fn) {
  let upstreamCalls = 0;
  const fast = fastRequestAttributes((...args) => {
    upstreamCalls++;
    return upstream(...args);
  });
  const server = http.createServer((req, res) => {
    const before = upstreamCalls;
    const ours = fast(req, server.options, logger);
    const theirs = upstream(req, server.options, logger);
    server.emit('seen', { ours, theirs, fastPath: upstreamCalls === before });
    res.end();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    await fn(server);
  } finally {
    server.close();
  }
}

const OPTIONS = { component: 'http', enableSyntheticSourceDetection: false };

const PLAIN_PATHS = [
  '/',
  '/hello',
  '/a/b/c',
  '/a//b',
  '/users/John%20Doe',
  '/x%zz',
  "/a:b@c;d=e,f(g)!$&'*+~",
  '/v1/items/42',
];
const OTHER_PATHS = [
  '//evil.example/x',
  '/a/./b',
  '/a/../b',
  '/%2e%2e/x',
  '/a/%2E/b',
  '/.hidden',
  '/a?x=1&y=2',
  '/a?',
  '/a?password=secret&AWSAccessKeyId=x&sig=y',
  '/a#frag',
  'http://other.example:8080/abs?q=1',
  '*',
  '/a\\b',
  '/a{b}',
  '/a^b',
  '/a|b',
  '/a`b',
];

test('plain paths: the same attributes as upstream, in the same order, without its helper', async () => {
  await withServer(async (server) => {
    for (const path of PLAIN_PATHS) {
      for (const host of ['localhost:3000', 'example.com', 'EXAMPLE.com:80', 'a-b.example.org:8443']) {
        for (const options of [
          OPTIONS,
          { ...OPTIONS, component: 'https' },
          { ...OPTIONS, hookAttributes: { 'app.x': 1 } },
        ]) {
          const r = await compare(server, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: test/1.0`, options);
          assert.ok(r, `no request for ${path} ${host}`);
          assert.deepEqual(r.ours, r.theirs, `${path} ${host} ${options.component}`);
          assert.deepEqual(Object.keys(r.ours), Object.keys(r.theirs));
          assert.equal(r.fastPath, true, `${path} ${host} went to upstream's helper`);
        }
      }
    }
  });
});

test('paths the URL parser rewrites, queries and absolute URLs: the same attributes as upstream', async () => {
  await withServer(async (server) => {
    for (const path of OTHER_PATHS) {
      const r = await compare(server, `GET ${path} HTTP/1.1\r\nHost: localhost:3000`, OPTIONS);
      assert.ok(r, `no request for ${path}`);
      assert.deepEqual(r.ours, r.theirs, path);
      assert.deepEqual(Object.keys(r.ours), Object.keys(r.theirs), path);
    }
  });
});

test('odd Host headers, proxy headers, methods and versions: the same attributes as upstream', async () => {
  const heads = [
    'GET /x HTTP/1.1\r\nHost: [::1]:3000',
    'GET /x HTTP/1.1\r\nHost: [::1]',
    'GET /x HTTP/1.1\r\nHost: 1.2.3.256',
    'GET /x HTTP/1.1\r\nHost: 999',
    'GET /x HTTP/1.1\r\nHost: a..b',
    'GET /x HTTP/1.1\r\nHost: x:99999',
    'GET /x HTTP/1.1\r\nHost: x:abc',
    'GET /x HTTP/1.1\r\nHost: bad host',
    'GET /x HTTP/1.1\r\nHost: a:b:c',
    'GET /x HTTP/1.1\r\nHost:',
    'GET /x HTTP/1.0',
    'GET /x HTTP/1.1\r\nHost: h\r\nForwarded: for=192.0.2.60;proto=https;host=proxy.example',
    'GET /x HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 203.0.113.7:5000, 10.0.0.1',
    'GET /x HTTP/1.1\r\nHost: h\r\nX-Forwarded-Host: front.example\r\nX-Forwarded-Proto: https',
    'PURGE /x HTTP/1.1\r\nHost: h',
    'PROPFIND /x HTTP/1.1\r\nHost: h:81',
    'DELETE /x HTTP/1.1\r\nHost: h',
  ];
  await withServer(async (server) => {
    for (const head of heads) {
      for (const options of [OPTIONS, { ...OPTIONS, enableSyntheticSourceDetection: true }]) {
        const r = await compare(server, `${head}\r\nUser-Agent: Googlebot/2.1`, options);
        assert.ok(r, `no request for ${head}`);
        assert.deepEqual(r.ours, r.theirs, head);
        assert.deepEqual(Object.keys(r.ours), Object.keys(r.theirs), head);
      }
    }
  });
});
