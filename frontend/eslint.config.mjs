// ESLint for the browser code (./sr check runs it on frontend/src). Flat config; the
// recommended rules plus a few that catch real mistakes in code bundled by esbuild.
import js from "@eslint/js";
import globals from "globals";

export default [
  js.configs.recommended,
  {
    files: ["src/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: { ...globals.browser },
    },
    rules: {
      eqeqeq: ["error", "always", { null: "ignore" }],
      "no-unused-vars": ["error", { args: "after-used", argsIgnorePattern: "^_", caughtErrors: "none" }],
    },
  },
  {
    // Build scripts run in Node.
    files: ["**/*.mjs"],
    languageOptions: { globals: { ...globals.node } },
  },
];
