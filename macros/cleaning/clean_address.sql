{#- An address normalised for matching: clean_text, and 台 (the common form) written as
    臺 (the official one), so 台東 and 臺東 compare equal. The original stays beside it. -#}
{% macro clean_address(value) -%}
    replace({{ clean_text(value) }}, '台', '臺')
{%- endmacro %}
