// ESM entry. Run it traced with: node --import forktrace/register server.mjs
import express from 'express';
import mysql from 'mysql2';
import routes from './routes.cjs';

routes.start(express, mysql);
