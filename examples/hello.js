// The smallest clave function: greet whoever is named in the JSON body.
//
//   clave deploy examples/hello.js --name hello
//   clave invoke hello --data '{"name":"Ada"}'
export default {
  async fetch(request) {
    let name = "world";
    if (request.method === "POST") {
      const text = await request.text();
      if (text) {
        const body = JSON.parse(text);
        if (typeof body.name === "string") name = body.name;
      }
    }
    return Response.json({ greeting: `Hello, ${name}!`, from: "a clave engine" });
  },
};
