// Reads a sealed secret and a plain var from `env`, and logs to the sealed developer log:
//   echo 'sk-test-123' | clave secret put API_KEY --function greet
//   clave deploy examples/greet.js --name greet --secret API_KEY --var GREETING=Hi
//   clave invoke greet --data '{"name":"Ada"}'
//   clave tail greet        # in another terminal: console output and outcome of each call
export default {
  async fetch(request, env) {
    const { name = "world" } = await request.json().catch(() => ({}));
    console.log(`greeting ${name}`);
    if (!env.API_KEY) {
      console.warn("API_KEY is not set: run `clave secret put API_KEY --function greet`");
    }
    return Response.json({
      greeting: `${env.GREETING ?? "Hello"}, ${name}!`,
      // Never return a secret; show only that it arrived.
      api_key_set: typeof env.API_KEY === "string",
      api_key_length: env.API_KEY?.length ?? 0,
    });
  },
};
