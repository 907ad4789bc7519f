'use strict';
// CommonJS entry. Run it traced with: node --require forktrace/register server.js
const express = require('express');
const mysql = require('mysql2');
require('./routes.cjs').start(express, mysql);
