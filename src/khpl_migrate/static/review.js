// Aadhaar copies are blurred until clicked; a second click blurs them again.
// (A file of its own, not inline: the page's Content-Security-Policy allows no inline script.)
document.addEventListener("click", (event) => {
  const image = event.target.closest(".sensitive img");
  if (image) {
    image.classList.toggle("revealed");
  }
});
