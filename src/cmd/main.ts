console.log("trellis");
