{#- The stray word in a yes/no column (客戶自有, 現金, 先不裝 ...), or NULL when the value
    is a plain yes or no. See flag_value. -#}
{% macro flag_word(value) -%}
    case
        when upper({{ clean_text(value) }}) not in ('V', '1', 'X') then {{ clean_text(value) }}
    end
{%- endmacro %}
