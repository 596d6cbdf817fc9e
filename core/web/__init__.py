"""What Archscope's server adds to Streamlit's: cross-origin isolation, the browser bench's routes, the
access token (server: the middleware and routes app.py hands to st.App)."""
